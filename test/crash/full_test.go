package crash

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/volume/stagemark"
	"github.com/localdisk-csi/localdisk/test/testutil"
)

// TestStateDiskFull: with the state directory's filesystem full,
// CreateVolume, DeleteVolume and the NodeStageVolume of a PATH volume (which
// writes its staging record) fail with a clean error code (not a hang, not
// UNAVAILABLE or DEADLINE_EXCEEDED), nothing is half-made, the old records
// are intact; once there is room, the retries succeed.
func TestStateDiskFull(t *testing.T) {
	dir := testutil.ShortTempDir(t)
	state := filepath.Join(dir, "state")
	if err := os.Mkdir(state, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", state, "tmpfs", 0, "size=256k,mode=0700"); err != nil {
		t.Fatalf("mounting a tiny tmpfs for the state: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(state, unix.MNT_DETACH) }) // after the plugin is gone
	e := newEnv(t, "root", testutil.EnvOptions{Dir: dir, StateDir: state})
	// A MOUNT delete records `deleting` first, so it needs the full disk
	// (a ROOT/PATH delete only removes its record, which frees space).
	old := e.create("old", "mount")
	e.Must(os.WriteFile(filepath.Join(e.dataDir(old), "f"), []byte("old data"), 0o600), "write")
	unstaged := e.create("unstaged", "path")
	snapshot := testutil.FilesBelow(t, state)

	filler := filepath.Join(state, "filler")
	fill(t, filler)
	for _, kind := range []string{"root", "path"} {
		name := "new-" + kind
		_, err := e.Create(name, sizeOf(kind), map[string]string{"pool": poolOf[kind]})
		switch status.Code(err) {
		case codes.OK, codes.Unavailable, codes.DeadlineExceeded, codes.Unknown:
			t.Errorf("CreateVolume (%s) on a full state disk: %v; want a clean error code", kind, err)
		}
		t.Logf("CreateVolume (%s) on a full state disk: %v", kind, err)
	}
	err := e.Delete(old.id)
	switch status.Code(err) {
	case codes.OK, codes.Unavailable, codes.DeadlineExceeded, codes.Unknown:
		t.Errorf("DeleteVolume on a full state disk: %v; want a clean error code", err)
	}
	if data, err := os.ReadFile(filepath.Join(e.dataDir(old), "f")); err != nil || string(data) != "old data" {
		t.Errorf("data of the volume whose delete failed: %q, %v", data, err)
	}
	err = e.Stage(unstaged.id, unstaged.staging)
	switch status.Code(err) {
	case codes.OK, codes.Unavailable, codes.DeadlineExceeded, codes.Unknown:
		t.Errorf("NodeStageVolume (path) on a full state disk: %v; want a clean error code", err)
	}
	t.Logf("NodeStageVolume (path) on a full state disk: %v", err)
	e.checkNothingNew(state, snapshot, filler)

	// The same holds after a restart on the full disk.
	e.restart()
	e.checkNothingNew(state, snapshot, filler)

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"root", "path"} {
		_, err := e.Create("new-"+kind, sizeOf(kind), map[string]string{"pool": poolOf[kind]})
		e.Must(err, "retry CreateVolume ("+kind+")")
	}
	e.Must(e.Delete(old.id), "retry the delete")
	e.Must(e.Stage(unstaged.id, unstaged.staging), "retry the stage")
	e.checkStaged(unstaged, true)
	e.Must(e.Unstage(unstaged.id, unstaged.staging), "unstage")
	e.Must(e.Delete(unstaged.id), "delete")
	vols := e.CheckConverged()
	if len(vols) != 3 {
		t.Errorf("%d volumes, want the canary and 2 new ones", len(vols))
	}
	e.checkCanary()
}

// checkNothingNew checks that the state holds what it held before (plus the
// filler), that no volume was added and the capacities are unchanged.
func (e *env) checkNothingNew(state string, snapshot []string, filler string) {
	e.t.Helper()
	var now []string
	for _, f := range testutil.FilesBelow(e.t, state) {
		if !strings.HasPrefix(f, "- "+filepath.Base(filler)+" ") { // the filler grows
			now = append(now, f)
		}
	}
	if !slices.Equal(now, snapshot) {
		e.t.Errorf("state changed on a full disk:\n got %q\nwant %q", now, snapshot)
	}
	e.CheckConverged()
	e.checkCanary()
}

// fill writes to path until its filesystem is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for _, chunk := range []int{4096, 1} {
		for {
			if _, err := f.Write(buf[:chunk]); err != nil {
				if !errors.Is(err, unix.ENOSPC) {
					t.Fatalf("filling the state disk: %v", err)
				}
				break
			}
		}
	}
}

// TestSimulatedReboot: every mount is gone (the CO's and the disks', which
// come back remounted), the staging records of ROOT and PATH volumes are
// stale (a reboot gives a new boot ID; a simulated one cannot change the
// kernel's, so it makes the records name an earlier boot), the plugin
// restarts and drops them, and the CO's stage and publish of every volume
// converge with the data intact.
func TestSimulatedReboot(t *testing.T) {
	e := newEnv(t, "root", testutil.EnvOptions{})
	vols := []*vol{e.canary, e.create("p", "path"), e.create("m", "mount")}
	for _, v := range vols[1:] {
		e.Must(e.Stage(v.id, v.staging), "stage")
		e.Must(e.Publish(v.id, v.staging, v.target, false), "publish")
		e.Must(os.WriteFile(filepath.Join(v.target, "data"), []byte(v.id), 0o600), "write")
	}
	want := e.mounts()
	e.P.Kill()
	records := filepath.Join(e.StateDir, layout.StagingDir)
	for _, v := range vols {
		if recorded(v) != slices.Contains(e.stagingRecord(v), canonical(t, v.staging)) {
			t.Errorf("before the reboot, volume %s staged at %s: staging record %q", v.id, v.staging, e.stagingRecord(v))
		}
		paths := []string{v.target, v.staging}
		if recorded(v) { // staged without a mount
			paths = paths[:1]
		}
		for _, p := range paths {
			if err := unix.Unmount(p, 0); err != nil {
				t.Fatalf("unmounting %s: %v", p, err)
			}
		}
	}
	ents, err := os.ReadDir(records)
	e.Must(err, "list the staging records")
	if len(ents) != 2 {
		t.Errorf("staging records before the reboot: %v, want the ROOT and the PATH volume's", ents)
	}
	boot, err := stagemark.BootID()
	e.Must(err, "read the boot ID")
	for _, ent := range ents {
		f := filepath.Join(records, ent.Name())
		b, err := os.ReadFile(f)
		e.Must(err, "read a staging record")
		stale := strings.Replace(string(b), `"boot":"`+boot+`"`, `"boot":"an-earlier-boot"`, 1)
		if stale == string(b) {
			t.Fatalf("staging record %s does not name this boot %s: %s", ent.Name(), boot, b)
		}
		e.Must(os.WriteFile(f, []byte(stale), 0o600), "make a staging record stale")
	}
	testutil.RemountDisk(t, e.PathDisk)
	for _, d := range e.Disks {
		testutil.RemountDisk(t, d)
	}
	e.restart()
	if ents, err := os.ReadDir(records); err != nil || len(ents) != 0 {
		t.Errorf("staging records of an earlier boot after the restart: %v, %v; want them dropped", ents, err)
	}
	for range 2 { // the CO may replay its calls
		for _, v := range vols {
			e.Must(e.Stage(v.id, v.staging), "stage after the reboot")
			e.Must(e.Publish(v.id, v.staging, v.target, false), "publish after the reboot")
		}
		e.checkMounts("after the reboot's stage and publish", want)
		for _, v := range vols[:2] {
			e.checkStaged(v, true)
		}
	}
	for _, v := range vols[1:] {
		if data, err := os.ReadFile(filepath.Join(v.target, "data")); err != nil || string(data) != v.id {
			t.Errorf("data of %s after the reboot: %q, %v", v.id, data, err)
		}
	}
	e.checkCanary()
	e.CheckConverged()
	for _, v := range vols[1:] {
		e.Must(e.Unpublish(v.id, v.target), "unpublish")
		e.Must(e.Unstage(v.id, v.staging), "unstage")
		e.Must(e.Delete(v.id), "delete")
	}
	e.CheckConverged()
}

// canonical is p with its symlinks resolved, as the plugin records it.
func canonical(t *testing.T, p string) string {
	t.Helper()
	c, err := filepath.EvalSymlinks(p)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
