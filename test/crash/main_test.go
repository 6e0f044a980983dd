// Package crash kills the real plugin (built with -tags failpoints) at each
// of its named crash points, restarts it and retries the operation the way
// Mesos and Kubernetes do, and checks that everything converges: one volume
// per name, no orphan directory or mount, exact capacity accounting, other
// volumes' data intact. It also starts the plugin over torn and corrupt
// state, on a full state filesystem, and after a simulated reboot.
package crash

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/localdisk-csi/localdisk/driver/failpoint"
	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/volume/stagemark"
	"github.com/localdisk-csi/localdisk/test/testutil"
)

func TestMain(m *testing.M) { testutil.MainWithBuilds(m) }

// failpointBin is the plugin built with its crash points.
func failpointBin(t *testing.T) string {
	return testutil.BuildPluginWith(t, testutil.BuildOptions{Tags: []string{"failpoints"}})
}

// poolOf is the pool an Env serves for a kind.
var poolOf = map[string]string{"root": testutil.RootPool, "path": testutil.PathPool,
	"mount": testutil.MountPool, "device": testutil.DevicePool}

// vol is a volume with its CO paths.
type vol struct {
	name, id, pool  string
	staging, target string
}

// env is a testutil.Env with a canary: a volume of the pool under test,
// staged and published, holding a file, created before anything crashes.
type env struct {
	*testutil.Env
	t      *testing.T
	canary *vol
}

const canaryData = "canary: must survive every crash of another volume"

func newEnv(t *testing.T, kind string, opts testutil.EnvOptions) *env {
	if opts.Bin == "" {
		opts.Bin = failpointBin(t)
	}
	if kind == "device" {
		opts.DeviceDisks = 2 // the canary's and the test volume's
	}
	e := &env{Env: testutil.NewEnv(t, opts), t: t}
	e.canary = e.create("canary", kind)
	e.Must(e.Stage(e.canary.id, e.canary.staging), "stage the canary")
	e.Must(e.Publish(e.canary.id, e.canary.staging, e.canary.target, false), "publish the canary")
	e.Must(os.WriteFile(filepath.Join(e.canary.target, "data"), []byte(canaryData), 0o600), "write the canary")
	t.Cleanup(func() {
		if e.P.Running() {
			e.Unpublish(e.canary.id, e.canary.target)
			e.Unstage(e.canary.id, e.canary.staging)
		}
	})
	return e
}

// sizeOf is what a test volume of a kind asks for: 4 MiB, or a whole disk.
func sizeOf(kind string) int64 {
	if kind == "mount" || kind == "device" {
		return 0
	}
	return 4 * testutil.MiB
}

// create makes a volume of the kind's pool, with paths, failing the test on error.
func (e *env) create(name, kind string) *vol {
	e.t.Helper()
	v := &vol{name: name, pool: poolOf[kind]}
	cv := e.MustCreate(name, sizeOf(kind), map[string]string{"pool": v.pool})
	v.id = cv.GetVolumeId()
	v.staging, v.target = e.Paths(name)
	return v
}

// dataDir is where a volume's data lives (not through a mount); a device
// volume's data is only reachable where it is staged.
func (e *env) dataDir(v *vol) string {
	switch v.pool {
	case testutil.MountPool:
		return e.DiskOf(v.id)
	case testutil.DevicePool:
		return v.staging
	}
	return e.VolumeDir(v.pool, v.id)
}

// checkCanary fails the test unless the canary still shows its file through
// its target.
func (e *env) checkCanary() {
	e.t.Helper()
	data, err := os.ReadFile(filepath.Join(e.canary.target, "data"))
	if err != nil || string(data) != canaryData {
		e.t.Errorf("canary data: %q, %v", data, err)
	}
}

// restart stops the plugin (it may have crashed already) and starts it
// again with env (nil: unarmed).
func (e *env) restart(env ...string) {
	e.t.Helper()
	e.P.SetEnv(env...)
	e.P.Restart()
}

// arm restarts the plugin with a failpoint armed.
func (e *env) arm(point string) { e.restart(failpoint.Env + "=" + point) }

// mounts is the sorted mount list under the test dir.
func (e *env) mounts() []string { return testutil.Mounts(e.t, e.Dir) }

// plus and minus edit a sorted mount list.
func plus(ms []string, p string) []string {
	out := append(slices.Clone(ms), p)
	sort.Strings(out)
	return out
}

func minus(ms []string, p string) []string {
	out := slices.Clone(ms)
	if i := slices.Index(out, p); i >= 0 {
		out = slices.Delete(out, i, i+1)
	}
	return out
}

// checkMounts compares the mounts with want.
func (e *env) checkMounts(what string, want []string) {
	e.t.Helper()
	if got := e.mounts(); !slices.Equal(got, want) {
		e.t.Errorf("%s: mounts\n got %q\nwant %q", what, got, want)
	}
}

// recorded says whether a volume is staged without a mount: a ROOT or PATH
// volume, whose staging record (<state-dir>/staging/<id>) says where it is
// staged; its staging path is a plain directory that shows none of its data.
func recorded(v *vol) bool { return v.pool == testutil.RootPool || v.pool == testutil.PathPool }

// stagingRecord reads volume v's staging record: the staging paths it
// names (nil: no record). A record of another boot fails the test.
func (e *env) stagingRecord(v *vol) []string {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.StateDir, layout.StagingDir, v.id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	e.Must(err, "read the staging record")
	var rec struct {
		Boot  string   `json:"boot"`
		Paths []string `json:"paths"`
	}
	e.Must(json.Unmarshal(b, &rec), "parse the staging record "+string(b))
	boot, err := stagemark.BootID()
	e.Must(err, "read the boot ID")
	if rec.Boot != boot {
		e.t.Errorf("staging record of %s made in boot %q, this is %q", v.id, rec.Boot, boot)
	}
	return rec.Paths
}

// checkStaged checks how a ROOT or PATH volume is staged: if staged, its
// record names exactly its staging path, which exists and is an empty
// directory (no mount: checkMounts); if not, it has no record.
func (e *env) checkStaged(v *vol, staged bool) {
	e.t.Helper()
	paths := e.stagingRecord(v)
	if !staged {
		if paths != nil {
			e.t.Errorf("volume %s unstaged, but its staging record names %q", v.id, paths)
		}
		return
	}
	canon, err := filepath.EvalSymlinks(v.staging)
	if err != nil {
		e.t.Errorf("staging path of %s: %v", v.id, err)
		return
	}
	if !slices.Equal(paths, []string{canon}) {
		e.t.Errorf("staging record of %s names %q, want [%q]", v.id, paths, canon)
	}
	if ents, err := os.ReadDir(v.staging); err != nil || len(ents) != 0 {
		e.t.Errorf("staging path %s of %s: %v, %v; want an empty directory", v.staging, v.id, ents, err)
	}
}
