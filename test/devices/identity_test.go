package devices

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/test/testutil"
)

// linkDir is a directory of the test's device names under /dev (as
// /dev/disk/by-id is), removed at its end.
func linkDir(t *testing.T) string {
	d, err := os.MkdirTemp("/dev", "localdisk-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// link makes dir/name a symlink to dev, so a test can rename or remove a
// device without touching the loop devices that other tests, running in
// parallel, allocate.
func link(t *testing.T, dir, name, dev string) string {
	p := filepath.Join(dir, name)
	os.Remove(p)
	if err := os.Symlink(dev, p); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDevice_RenamedDevicesKeepTheirVolumes: after a restart in which the
// two devices' names were swapped, each volume is still served from its own
// disk.
func TestDevice_RenamedDevicesKeepTheirVolumes(t *testing.T) {
	testutil.RequireRoot(t)
	dir := testutil.ShortTempDir(t)
	a, b := testutil.LoopDevice(t, dir, 64), testutil.LoopDevice(t, dir, 64)
	names := linkDir(t)
	na, nb := link(t, names, "disk-a", a), link(t, names, "disk-b", b)
	e := newEnv(t, dir, []string{na, nb}, "ext4", "none")
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
	link(t, names, "disk-a", b) // swapped
	link(t, names, "disk-b", a)
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
	names := linkDir(t)
	na, nb := link(t, names, "disk-a", a), link(t, names, "disk-b", b)
	e := newEnv(t, dir, []string{na, nb}, "ext4", "none")
	id, err := e.create("v", false)
	must(t, err)
	target, err := e.publish(id, false)
	must(t, err)
	os.WriteFile(filepath.Join(target, "data"), []byte("x"), 0o644)
	e.unpublish(id)
	gone := na
	if layout.DiskID("devs", na) != layout.DiskOf(id) {
		gone = nb // the volume took the other disk
	}
	must(t, os.Remove(gone)) // the device is gone
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

// TestDevice_FSTypeIsTheDisks: a device disk is formatted with its pool's
// fsType only: CreateVolume does not hand it out for another fs_type, and
// stage and ValidateVolumeCapabilities refuse another one for its volume.
func TestDevice_FSTypeIsTheDisks(t *testing.T) {
	testutil.RequireRoot(t)
	dir := testutil.ShortTempDir(t)
	dev := testutil.LoopDevice(t, dir, 64)
	e := newEnv(t, dir, []string{dev}, "ext4", "none")
	xfs := capFor(false)
	xfs.GetMount().FsType = "xfs"
	if _, err := e.p.Controller().CreateVolume(ctx(t), &csi.CreateVolumeRequest{Name: "x",
		VolumeCapabilities: []*csi.VolumeCapability{xfs}}); err == nil {
		t.Fatal("CreateVolume with fs_type xfs got a disk of an ext4 pool")
	}
	id, err := e.create("v", false)
	must(t, err)
	vvc, err := e.p.Controller().ValidateVolumeCapabilities(ctx(t), &csi.ValidateVolumeCapabilitiesRequest{
		VolumeId: id, VolumeCapabilities: []*csi.VolumeCapability{xfs}})
	if err != nil || vvc.GetConfirmed() != nil {
		t.Errorf("ValidateVolumeCapabilities with fs_type xfs of an ext4 disk: %v, %v; want no confirmation", vvc, err)
	}
	staging := filepath.Join(dir, "mounts", id, "staging")
	must(t, os.MkdirAll(staging, 0o750))
	_, err = e.p.Node().NodeStageVolume(ctx(t), &csi.NodeStageVolumeRequest{VolumeId: id, StagingTargetPath: staging, VolumeCapability: xfs})
	if status.Code(err) != codes.FailedPrecondition {
		t.Errorf("NodeStageVolume with fs_type xfs of an ext4 disk: %v, want FailedPrecondition", err)
	}
	if out, _ := exec.Command("blkid", "-o", "value", "-s", "TYPE", dev).Output(); strings.TrimSpace(string(out)) == "xfs" {
		t.Error("the disk was formatted xfs")
	}
}
