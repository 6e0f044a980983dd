package devices

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/localdisk-csi/localdisk/test/testutil"
)

// backing is the image file behind a loop device.
func backing(t *testing.T, dev string) string {
	out := sh(t, "losetup", "--noheadings", "--output", "BACK-FILE", dev)
	return strings.TrimSpace(out)
}

// TestDevice_RenamedDevicesKeepTheirVolumes: after a restart in which the
// two loop devices swapped names, each volume is still served from its own
// disk.
func TestDevice_RenamedDevicesKeepTheirVolumes(t *testing.T) {
	testutil.RequireRoot(t)
	dir := testutil.ShortTempDir(t)
	a, b := testutil.LoopDevice(t, dir, 64), testutil.LoopDevice(t, dir, 64)
	e := newEnv(t, dir, []string{a, b}, "ext4", "none")
	ids := map[string]string{}
	for _, name := range []string{"va", "vb"} {
		id, err := e.create(name, false)
		must(t, err)
		target, err := e.publish(id, false)
		must(t, err)
		must(t, os.WriteFile(filepath.Join(target, "who"), []byte(name), 0o644))
		e.unpublish(id)
		ids[name] = id
	}
	e.p.Stop()
	imgA, imgB := backing(t, a), backing(t, b)
	sh(t, "losetup", "--detach", a)
	sh(t, "losetup", "--detach", b)
	sh(t, "losetup", a, imgB) // swapped
	sh(t, "losetup", b, imgA)
	e.p.Restart()
	for name, id := range ids {
		target, err := e.publish(id, false)
		must(t, err)
		if data, err := os.ReadFile(filepath.Join(target, "who")); err != nil || string(data) != name {
			t.Errorf("volume %s shows %q (%v): another volume's disk", name, data, err)
		}
		e.unpublish(id)
	}
}

// TestDevice_DetachedDeviceFailsCleanly: a volume whose device is gone fails
// with FAILED_PRECONDITION, stays listed and keeps its record.
func TestDevice_DetachedDeviceFailsCleanly(t *testing.T) {
	testutil.RequireRoot(t)
	dir := testutil.ShortTempDir(t)
	a, b := testutil.LoopDevice(t, dir, 64), testutil.LoopDevice(t, dir, 64)
	e := newEnv(t, dir, []string{a, b}, "ext4", "none")
	id, err := e.create("v", false)
	must(t, err)
	target, err := e.publish(id, false)
	must(t, err)
	os.WriteFile(filepath.Join(target, "data"), []byte("x"), 0o644)
	e.unpublish(id)
	img := backing(t, a)
	if !strings.Contains(id, strings.TrimPrefix(a, "/dev/")) {
		img = backing(t, b) // the volume took the other disk
		a, b = b, a
	}
	sh(t, "losetup", "--detach", a)
	t.Cleanup(func() { sh(t, "losetup", a, img) }) // let LoopDevice's cleanup detach it
	if _, err := e.publish(id, false); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("stage with the device gone: %v, want FailedPrecondition", err)
	}
	if err := e.delete(id); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("delete with the device gone: %v, want FailedPrecondition", err)
	}
	r, err := e.p.Controller().ListVolumes(ctx(t), &csi.ListVolumesRequest{})
	must(t, err)
	if len(r.GetEntries()) != 1 || r.GetEntries()[0].GetVolume().GetVolumeId() != id {
		t.Errorf("volumes = %v", r.GetEntries())
	}
	os.Remove(filepath.Join(dir, "mounts", id, "target"))
}

// TestDevice_RawBlock: a block volume is the device itself, bound at a
// target file; read-only when asked.
func TestDevice_RawBlock(t *testing.T) {
	testutil.RequireRoot(t)
	dir := testutil.ShortTempDir(t)
	e := newEnv(t, dir, []string{testutil.LoopDevice(t, dir, 64)}, "ext4", "none")
	id, err := e.create("raw", true)
	must(t, err)
	target, err := e.publish(id, true)
	must(t, err)
	f, err := os.OpenFile(target, os.O_RDWR, 0)
	must(t, err)
	_, err = f.WriteAt([]byte("raw!"), 1<<20)
	f.Close()
	must(t, err)
	if fi, _ := os.Stat(target); fi.Mode()&os.ModeDevice == 0 {
		t.Errorf("target is %v, not a device", fi.Mode())
	}
	e.unpublish(id)
	if _, err := e.create("raw", false); status.Code(err) != codes.AlreadyExists {
		t.Errorf("same name as a mount volume: %v", err)
	}
	// On a directory pool block is refused at create.
	must(t, e.delete(id))
}
