// Package hostile feeds the real plugin input built to escape: names, IDs,
// parameters, contexts, staging and target paths; plants symlinks, hard
// links, fifos and deep trees in volumes and races a container swapping a
// directory for a symlink during DeleteVolume; holds mounts busy under
// unpublish; and checks that secrets are never logged or persisted and that
// the plugin's files have tight permissions; snapshots, clones and
// restores of volumes holding symlinks out of them, mounts and 10,000-level
// trees, and into targets too small for their data (snapshot*_test.go,
// snapsize_test.go). Every test checks that nothing outside the pools and
// the CO's paths was touched.
package hostile

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/localdisk-csi/localdisk/test/testutil"
)

func TestMain(m *testing.M) { testutil.MainWithBuilds(m) }

// idRE is what every volume ID must look like (DESIGN.md).
var idRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,127}$`)

var (
	kinds  = []string{"root", "path", "mount"}
	poolOf = map[string]string{"root": testutil.RootPool, "path": testutil.PathPool, "mount": testutil.MountPool}
)

func sizeOf(kind string) int64 {
	if kind == "mount" {
		return 0
	}
	return testutil.MiB
}

// env is a plugin with an "outside" sentinel tree next to its pools and
// snapshots of what must not change: the sentinel, the test directory's
// top level, the pools' top levels and the plugin's working directory.
type env struct {
	*testutil.Env
	t       *testing.T
	outside string
	before  map[string][]string
}

func newEnv(t *testing.T) *env {
	e := &env{Env: testutil.NewEnv(t, testutil.EnvOptions{}), t: t}
	e.outside = filepath.Join(e.Dir, "outside")
	for _, d := range []string{"sub/deeper", "empty"} {
		e.Must(os.MkdirAll(filepath.Join(e.outside, d), 0o755), "sentinel")
	}
	for _, f := range []string{"keep", "sub/keep", "sub/deeper/keep", "hard"} {
		e.Must(os.WriteFile(filepath.Join(e.outside, f), []byte("sentinel "+f), 0o644), "sentinel")
	}
	e.Must(os.Symlink("keep", filepath.Join(e.outside, "link")), "sentinel")
	e.before = e.snapshot()
	t.Cleanup(e.checkUntouched)
	return e
}

// sub is e reporting to t, a subtest of e's test.
func (e *env) sub(t *testing.T) *env {
	c := *e
	c.Env, c.t = e.Env.For(t), t
	return &c
}

// snapshot lists what no request may change.
func (e *env) snapshot() map[string][]string {
	cwd, err := os.Getwd()
	e.Must(err, "getwd")
	s := map[string][]string{
		"sentinel " + e.outside: testutil.FilesBelow(e.t, e.outside),
		"plugin's cwd " + cwd:   top(e.t, cwd),
		"test dir " + e.Dir:     top(e.t, e.Dir),
		"ROOT pool":             top(e.t, e.RootDir),
		"PATH pool":             top(e.t, e.PathDisk),
	}
	return s
}

func top(t *testing.T, dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("listing %s: %v", dir, err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// checkUntouched compares the snapshots with the ones taken at the start.
func (e *env) checkUntouched() {
	e.t.Helper()
	for k, now := range e.snapshot() {
		if !slices.Equal(now, e.before[k]) {
			e.t.Errorf("%s changed:\n got %q\nwant %q", k, now, e.before[k])
		}
	}
}

// wantCode fails unless err has one of the codes.
func wantCode(t *testing.T, err error, what string, want ...codes.Code) {
	t.Helper()
	if !slices.Contains(want, status.Code(err)) {
		t.Errorf("%s: %v; want one of %v", what, err, want)
	}
}

// vol is a volume with its CO paths.
type vol struct{ id, staging, target string }

// published creates a volume of kind, stages and publishes it.
func (e *env) published(name, kind string) vol {
	e.t.Helper()
	v := vol{id: e.MustCreate(name, sizeOf(kind), map[string]string{"pool": poolOf[kind]}).GetVolumeId()}
	v.staging, v.target = e.Paths(name)
	e.Must(e.Stage(v.id, v.staging), "stage "+name)
	e.Must(e.Publish(v.id, v.staging, v.target, false), "publish "+name)
	return v
}

// teardown unpublishes, unstages and deletes v.
func (e *env) teardown(v vol) {
	e.t.Helper()
	e.Must(e.Unpublish(v.id, v.target), "unpublish")
	e.Must(e.Unstage(v.id, v.staging), "unstage")
	e.Must(e.Delete(v.id), "delete")
}

// dataDir is where v's data lives, not through a mount.
func (e *env) dataDir(kind, id string) string {
	if kind == "mount" {
		return e.DiskOf(id)
	}
	return e.VolumeDir(poolOf[kind], id)
}
