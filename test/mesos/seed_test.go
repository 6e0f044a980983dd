package mesos

import (
	"bytes"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
)

// filesHolding lists the regular files below dir whose content contains
// secret.
func filesHolding(t *testing.T, dir, secret string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			if bytes.Contains(data, []byte(secret)) {
				out = append(out, path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walking %s: %v", dir, err)
	}
	return out
}

// TestSeed_DataSurvivesUntilDestroyed writes to a volume of each kind and
// checks that the data survives a plugin restart, a crash and a reboot,
// and that destroying the volume (Mesos's DESTROY_DISK: unpublish,
// unstage, DeleteVolume) removes it, and only then.
func TestSeed_DataSurvivesUntilDestroyed(t *testing.T) {
	a := startAgent(t, eachKind)
	vols := a.oneOfEach()
	pools := map[string]string{"root": a.work, "path": a.pathRoots[0], "mount": a.mountRoots[0]}
	secret := func(v vol) string { return "seed data of " + v.id }
	for _, v := range vols {
		a.mustMount(v.id, v.ctx)
		if err := os.Mkdir(filepath.Join(a.target(v.id), "dir"), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(a.target(v.id), "dir", "data"), secret(v))
	}
	check := func(when string) {
		t.Helper()
		for _, v := range vols {
			a.mustMount(v.id, v.ctx)
			wantMounts(t, a.mountPath(v.id), a.mountsOf(v.id, a.staging(v.id), a.target(v.id))...)
			wantFile(t, filepath.Join(a.target(v.id), "dir", "data"), secret(v))
			if t.Failed() {
				t.Fatalf("%s: %s volume %s lost its data", when, v.kind, v.id)
			}
		}
	}
	a.restart()
	check("after a plugin restart")
	a.p.Kill()
	a.p.Restart()
	check("after a plugin crash")
	a.reboot()
	check("after a reboot")

	listed := a.list()
	for _, v := range vols {
		if _, ok := listed[v.id]; !ok {
			t.Errorf("%s volume %s is not listed", v.kind, v.id)
		}
		a.mustUnmount(v.id)
		a.removeMountPath(v.id)
		if err := a.delete(v.id); err != nil {
			t.Fatalf("DeleteVolume(%s): %v", v.id, err)
		}
		if left := filesHolding(t, pools[v.kind], secret(v)); len(left) > 0 {
			t.Errorf("%s volume destroyed, its data is still on the disk: %q", v.kind, left)
		}
	}
	listed = a.list()
	for _, v := range vols {
		if _, ok := listed[v.id]; ok != (v.kind == "mount") {
			t.Errorf("after DeleteVolume, %s volume %s listed=%v; only a disk stays listed", v.kind, v.id, ok)
		}
	}
	if left := entries(t, a.mountRoots[0]); !slices.Equal(left, []string{"lost+found"}) {
		t.Errorf("the destroyed disk holds %q", left)
	}
	// The same names made again give empty volumes.
	for _, v := range vols[:2] {
		nv := a.mustCreate(v.name, 8*mib, map[string]string{"kind": v.kind})
		a.mustMount(nv.GetVolumeId(), nv.GetVolumeContext())
		if left := entries(t, a.target(nv.GetVolumeId())); len(left) != 0 {
			t.Errorf("%s volume made again with the name of a destroyed one holds %q", v.kind, left)
		}
		a.mustUnmount(nv.GetVolumeId())
	}
}

// TestSeed_ShrunkPathPoolKeepsServing restarts the plugin with a PATH pool
// made smaller than what its volumes hold: every volume is kept, listed and
// served as before, GetCapacity is 0, the log warns about the pool, and
// nothing is deleted.
func TestSeed_ShrunkPathPoolKeepsServing(t *testing.T) {
	a := startAgent(t, setup{RootMB: 32, Paths: []pathDisk{{DiskMiB: 256, MB: 200}}})
	pool := a.pathPool(0)
	params := map[string]string{"pool": pool}
	var ids []string
	for i := range 3 {
		v := a.mustCreate(newUUID(), 40*mib, params)
		ids = append(ids, v.GetVolumeId())
		a.mustMount(v.GetVolumeId(), v.GetVolumeContext())
		writeFile(t, filepath.Join(a.target(v.GetVolumeId()), "data"), strings.Repeat("x", i+1))
		if i > 0 {
			a.mustUnmount(v.GetVolumeId())
		}
	}
	before := a.listRaw()
	beforeList := a.list()
	records := entries(t, filepath.Join(a.state, "volumes"))
	disk := snapshot(t, filepath.Join(a.pathRoots[0], "localdisk", "volumes"))

	a.p.Stop()
	for i := range a.res {
		if a.res[i].Disk != nil && a.res[i].Disk.Source.Type == "PATH" {
			a.res[i].Scalar.Value = 64 // below the 120 MiB its volumes hold
		}
	}
	a.writeResources()
	logStart := logSize(t, a.p.LogPath)
	a.p.Restart()

	if got := a.list(); !maps.EqualFunc(got, beforeList, func(x, y *csi.Volume) bool { return proto.Equal(x, y) }) {
		t.Errorf("ListVolumes changed with the shrunk pool:\n%v\nwas\n%v", a.listRaw(), before)
	}
	for _, p := range []map[string]string{params, {"kind": "path"}} {
		if n := a.mustCapacity(p); n != 0 {
			t.Errorf("GetCapacity(%v) = %d with the pool shrunk below its volumes, want 0", p, n)
		}
	}
	_, err := a.create(newUUID(), mib, params)
	wantCode(t, "CreateVolume in the shrunk pool", err, codes.ResourceExhausted)
	for i, id := range ids {
		vctx := beforeList[id].GetVolumeContext()
		a.mustMount(id, vctx) // the first is still mounted: idempotent
		wantFile(t, filepath.Join(a.target(id), "data"), strings.Repeat("x", i+1))
		a.mustUnmount(id)
		a.removeMountPath(id)
	}
	if warned := startupWarnings(t, a.p.LogPath, logStart, pool); len(warned) == 0 {
		t.Errorf("no warning mentioning pool %s in the plugin's start-up log", pool)
	}
	if got := entries(t, filepath.Join(a.state, "volumes")); !slices.Equal(got, records) {
		t.Errorf("volume records %q, were %q", got, records)
	}
	if d := disk.diff(snapshot(t, filepath.Join(a.pathRoots[0], "localdisk", "volumes"))); len(d) > 0 {
		t.Errorf("the pool's volumes changed: %q", d)
	}
}

func logSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// startupWarnings returns the warnings that mention pool among the log
// lines the plugin wrote after offset and before it started serving (so
// that a failed RPC naming the pool does not count).
func startupWarnings(t *testing.T, path string, offset int64, pool string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for line := range strings.Lines(string(data[offset:])) {
		if strings.Contains(line, "msg=serving") {
			return out
		}
		if strings.Contains(line, "level=warning") && strings.Contains(line, pool) {
			out = append(out, line)
		}
	}
	t.Errorf("the plugin's log has no serving line after its restart")
	return out
}
