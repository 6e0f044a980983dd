package hostile

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"google.golang.org/grpc/codes"

	"github.com/localdisk-csi/localdisk/test/testutil"
)

// TestPaths_InsidePools: a staging or target path inside a pool's data
// (another volume, the volume itself, the trash, the pool's own directory,
// a PATH disk's root, a free MOUNT disk) or inside the plugin's state
// directory is refused; mounting there would hide or expose data the
// plugin manages, and its own walks (trash sweep, wipe, record load) would
// then act through the mount.
func TestPaths_InsidePools(t *testing.T) {
	e := newEnv(t)
	v := e.published("v", "root")
	other := e.MustCreate("other", testutil.MiB, map[string]string{"pool": testutil.RootPool}).GetVolumeId()
	pathVol := e.MustCreate("pv", testutil.MiB, map[string]string{"pool": testutil.PathPool}).GetVolumeId()
	claimed := e.MustCreate("mv", 0, map[string]string{"pool": testutil.MountPool}).GetVolumeId()
	var free string
	for _, d := range e.Disks {
		if d != e.DiskOf(claimed) {
			free = d
		}
	}
	mounts := testutil.Mounts(t, e.Dir)
	for _, c := range []struct{ what, path string }{
		{"another volume's directory", e.VolumeDir(testutil.RootPool, other)},
		{"inside another volume", filepath.Join(e.VolumeDir(testutil.RootPool, other), "sub")},
		{"inside the volume itself", filepath.Join(e.VolumeDir(testutil.RootPool, v.id), "sub")},
		{"the pool's volumes directory", filepath.Join(e.RootDir, "localdisk", "volumes")},
		{"the pool's trash", filepath.Join(e.RootDir, "localdisk", "trash", "evil")},
		{"the pool's data directory", filepath.Join(e.RootDir, "localdisk")},
		{"a ROOT pool's root", e.RootDir},
		{"a PATH volume's directory", e.VolumeDir(testutil.PathPool, pathVol)},
		{"a PATH disk's root", e.PathDisk},
		{"a claimed MOUNT disk", filepath.Join(e.DiskOf(claimed), "sub")},
		{"a free MOUNT disk", filepath.Join(free, "sub")},
		{"a free MOUNT disk's root", free},
		{"the state directory", e.StateDir},
		{"the records directory", filepath.Join(e.StateDir, "volumes", "evil")},
	} {
		t.Run(c.what, func(t *testing.T) {
			e := e.sub(t)
			_, existed := os.Lstat(c.path)
			n := count(t, c.path)
			wantCode(t, e.Stage(v.id, c.path), "stage at "+c.what, codes.InvalidArgument, codes.FailedPrecondition)
			detach(t, c.path, n)
			wantCode(t, e.Publish(v.id, v.staging, c.path, false), "publish to "+c.what, codes.InvalidArgument, codes.FailedPrecondition)
			detach(t, c.path, n)
			if _, err := os.Lstat(c.path); existed != nil && err == nil {
				t.Errorf("%s was created", c.path)
				os.Remove(c.path)
			}
		})
	}
	if got := testutil.Mounts(t, e.Dir); !slices.Equal(got, mounts) {
		t.Errorf("mounts changed: %q, want %q", got, mounts)
	}
	e.CheckConverged()
	for _, id := range []string{other, pathVol, claimed} {
		e.Must(e.Delete(id), "delete")
	}
	e.teardown(v)
}

// count counts the mounts at p.
func count(t *testing.T, p string) int {
	n := 0
	for _, m := range testutil.Mounts(t, p) {
		if m == p {
			n++
		}
	}
	return n
}

// detach removes what a request stacked at p over the n mounts there
// before, directly: asking the plugin to unpublish p would also remove p,
// a directory of the pool.
func detach(t *testing.T, p string, n int) {
	for count(t, p) > n {
		if err := unix.Unmount(p, unix.MNT_DETACH); err != nil {
			t.Fatalf("detaching %s: %v", p, err)
		}
	}
}

// TestPaths_StagedInTrash: a volume staged inside a pool's trash (if the
// plugin accepts it) must survive a restart, whose start-up sweeps the
// trash.
func TestPaths_StagedInTrash(t *testing.T) {
	e := newEnv(t)
	victim := e.MustCreate("victim", testutil.MiB, map[string]string{"pool": testutil.RootPool}).GetVolumeId()
	data := filepath.Join(e.VolumeDir(testutil.RootPool, victim), "precious")
	e.Must(os.WriteFile(data, []byte("precious"), 0o600), "write")
	evil := filepath.Join(e.RootDir, "localdisk", "trash", "evil")
	err := e.Stage(victim, evil)
	wantCode(t, err, "stage inside the pool's trash", codes.InvalidArgument, codes.FailedPrecondition)
	if err == nil {
		e.P.Stop()
		e.P.Restart() // its start-up sweeps the trash
		if _, err := os.Stat(data); err != nil {
			t.Errorf("DATA LOSS: volume %s staged in the trash lost its data at the restart's trash sweep: %v", victim, err)
		}
		detach(t, evil, 0)
		os.Remove(evil)
	}
	e.Must(e.Delete(victim), "delete")
	e.CheckConverged()
}

// TestPaths_UnpublishOfPoolDirectory: unpublishing a target that is a pool
// directory (if publish accepted it) must not remove that directory; and a
// pool whose trash went missing must still delete volumes for real.
func TestPaths_UnpublishOfPoolDirectory(t *testing.T) {
	e := newEnv(t)
	v := e.published("v", "root")
	other := e.MustCreate("other", testutil.MiB, map[string]string{"pool": testutil.RootPool}).GetVolumeId()
	e.Must(os.WriteFile(filepath.Join(e.VolumeDir(testutil.RootPool, other), "f"), []byte("x"), 0o600), "write")
	trash := filepath.Join(e.RootDir, "localdisk", "trash")
	err := e.Publish(v.id, v.staging, trash, false)
	wantCode(t, err, "publish onto the pool's trash", codes.InvalidArgument, codes.FailedPrecondition)
	if err == nil {
		e.Must(e.Unpublish(v.id, trash), "unpublish")
		if _, err := os.Stat(trash); err != nil {
			t.Errorf("NodeUnpublishVolume removed the pool's trash directory: %v", err)
		}
	}
	e.Must(e.Delete(other), "delete another volume")
	if _, err := os.Stat(e.VolumeDir(testutil.RootPool, other)); err == nil {
		t.Errorf("DeleteVolume %s succeeded but its data directory is still there (orphan, capacity released)", other)
		os.RemoveAll(e.VolumeDir(testutil.RootPool, other))
	}
	os.Mkdir(trash, 0o700)
	e.teardown(v)
	e.CheckConverged()
}
