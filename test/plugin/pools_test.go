package plugin

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/moby/sys/mountinfo"
	"google.golang.org/grpc/codes"

	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/test/testutil"
)

// TestMount_KeepsDataAtCreateWipesAtDelete: a MOUNT volume is the whole
// disk, its existing data kept; deletion wipes it without following a
// symlink out of it, and frees the disk.
func TestMount_KeepsDataAtCreateWipesAtDelete(t *testing.T) {
	e := newEnv(t)
	for _, d := range e.disks {
		os.WriteFile(filepath.Join(d, "existing"), []byte("old"), 0o644)
	}
	outside := filepath.Join(e.dir, "outside")
	os.MkdirAll(filepath.Join(outside, "sub"), 0o755)
	os.WriteFile(filepath.Join(outside, "sub", "keep"), []byte("keep"), 0o644)

	v := e.create("db", 0, map[string]string{"kind": "mount"})
	id := v.GetVolumeId()
	staging, target := e.paths(id)
	e.must(e.stage(id, staging))
	e.must(e.publish(id, staging, target, false, rwo))
	if data, err := os.ReadFile(filepath.Join(target, "existing")); err != nil || string(data) != "old" {
		t.Errorf("existing data at create: %q %v", data, err)
	}
	os.Symlink(outside, filepath.Join(target, "escape"))
	os.Symlink(filepath.Join(outside, "sub", "keep"), filepath.Join(target, "file-link"))
	os.MkdirAll(filepath.Join(target, "deep", "er"), 0o755)
	os.WriteFile(filepath.Join(target, "lost+found", "orphan"), nil, 0o644)
	wantCode(t, e.delete(id), codes.FailedPrecondition, "delete while published")
	e.must(e.unpublish(id, target))
	e.must(e.unstage(id, staging))
	e.must(e.delete(id))

	var disk string
	for _, d := range e.disks {
		if _, err := os.Stat(filepath.Join(d, "existing")); os.IsNotExist(err) {
			disk = d
		}
	}
	if disk == "" {
		t.Fatal("no disk was wiped")
	}
	ents, _ := os.ReadDir(disk)
	for _, ent := range ents {
		if ent.Name() != "lost+found" {
			t.Errorf("left on the wiped disk: %s", ent.Name())
		}
	}
	if lf, _ := os.ReadDir(filepath.Join(disk, "lost+found")); len(lf) != 0 {
		t.Errorf("lost+found not emptied: %v", lf)
	}
	if data, err := os.ReadFile(filepath.Join(outside, "sub", "keep")); err != nil || string(data) != "keep" {
		t.Errorf("wipe followed a symlink out of the disk: %v", err)
	}
	// The disk is free again: two volumes fit, a third does not.
	a := e.create("a", 0, map[string]string{"pool": "disks"})
	b := e.create("b", 0, map[string]string{"pool": "disks"})
	_, err := e.p.Controller().CreateVolume(ctx(t), &csi.CreateVolumeRequest{Name: "c",
		Parameters: map[string]string{"pool": "disks"}, VolumeCapabilities: []*csi.VolumeCapability{rwo}})
	wantCode(t, err, codes.ResourceExhausted, "third volume on two disks")
	_, err = e.p.Controller().CreateVolume(ctx(t), &csi.CreateVolumeRequest{Name: "d",
		Parameters: map[string]string{"pool": "disks"}, VolumeCapabilities: []*csi.VolumeCapability{rwo},
		CapacityRange: &csi.CapacityRange{RequiredBytes: 1 << 40}})
	wantCode(t, err, codes.OutOfRange, "larger than any disk")
	e.must(e.delete(a.GetVolumeId()))
	e.must(e.delete(b.GetVolumeId()))
}

// TestPathPool_UnmountedDisk: a PATH pool whose disk is unmounted behind
// the plugin's back serves nothing new, lands nothing on the filesystem
// below, deletes nothing, and recovers when the disk is back.
func TestPathPool_UnmountedDisk(t *testing.T) {
	e := newEnv(t)
	v := e.create("v", 4*mib, map[string]string{"pool": "data"})
	mp, dev := pathDisk(t, e)
	if out, err := exec.Command("umount", mp).CombinedOutput(); err != nil {
		t.Fatalf("umount: %v %s", err, out)
	}
	remounted := false
	remount := func() {
		if !remounted {
			if out, err := exec.Command("mount", dev, mp).CombinedOutput(); err != nil {
				t.Fatalf("mount: %v %s", err, out)
			}
			remounted = true
		}
	}
	t.Cleanup(remount)

	_, err := e.p.Controller().CreateVolume(ctx(t), &csi.CreateVolumeRequest{Name: "w",
		Parameters: map[string]string{"pool": "data"}, VolumeCapabilities: []*csi.VolumeCapability{rwo},
		CapacityRange: &csi.CapacityRange{RequiredBytes: mib}})
	wantCode(t, err, codes.ResourceExhausted, "create in the unmounted pool")
	capa, err := e.p.Controller().GetCapacity(ctx(t), &csi.GetCapacityRequest{Parameters: map[string]string{"pool": "data"}})
	if err != nil || capa.GetAvailableCapacity() != 0 {
		t.Errorf("capacity of the unmounted pool: %v %v", capa, err)
	}
	wantCode(t, e.delete(v.GetVolumeId()), codes.FailedPrecondition, "delete in the unmounted pool")
	staging, _ := e.paths(v.GetVolumeId())
	wantCode(t, e.stage(v.GetVolumeId(), staging), codes.FailedPrecondition, "stage in the unmounted pool")
	if ents, _ := os.ReadDir(mp); len(ents) != 0 {
		t.Errorf("written below the unmounted disk: %v", ents)
	}
	if len(e.list()) != 1 {
		t.Errorf("volume of the unmounted pool no longer listed")
	}

	remount()
	e.must(e.stage(v.GetVolumeId(), staging))
	e.must(e.unstage(v.GetVolumeId(), staging))
	e.must(e.delete(v.GetVolumeId()))
}

// pathDisk finds the PATH pool's loop disk: its mount point and device.
func pathDisk(t *testing.T, e *env) (mp, dev string) {
	t.Helper()
	infos, err := mountinfo.GetMounts(mountinfo.PrefixFilter(e.dir))
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range infos {
		if i.Mountpoint != e.disks[0] && i.Mountpoint != e.disks[1] && i.FSType == "ext4" && i.Root == "/" {
			return i.Mountpoint, i.Source
		}
	}
	t.Fatal("PATH disk not found")
	return "", ""
}

// TestMount_SwappedDiskIsRefused: when another filesystem is mounted at a
// MOUNT volume's disk root, its volume fails cleanly and nothing is wiped.
func TestMount_SwappedDiskIsRefused(t *testing.T) {
	e := newEnv(t)
	v := e.create("db", 0, map[string]string{"pool": "disks"})
	id := v.GetVolumeId()
	root := e.disks[0]
	if layout.DiskID("disks", root) != layout.DiskOf(id) {
		root = e.disks[1]
	}
	if out, err := exec.Command("umount", root).CombinedOutput(); err != nil {
		t.Fatalf("umount: %v %s", err, out)
	}
	impostor := testutil.LoopDevice(t, e.dir, 32)
	if out, err := exec.Command("mkfs.ext4", "-q", "-F", impostor).CombinedOutput(); err != nil {
		t.Fatalf("mkfs: %v %s", err, out)
	}
	if out, err := exec.Command("mount", impostor, root).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", root).Run() })
	os.WriteFile(filepath.Join(root, "precious"), []byte("not yours"), 0o644)

	if got := e.health(id); !slices.Equal(got, []string{"INACCESSIBLE/DiskReplaced"}) {
		t.Errorf("health of a volume whose disk was swapped: %v, want INACCESSIBLE/DiskReplaced", got)
	}
	staging, _ := e.paths(id)
	wantCode(t, e.stage(id, staging), codes.FailedPrecondition, "stage on a swapped disk")
	wantCode(t, e.delete(id), codes.FailedPrecondition, "delete on a swapped disk")
	if data, err := os.ReadFile(filepath.Join(root, "precious")); err != nil || string(data) != "not yours" {
		t.Errorf("the impostor disk was wiped: %v", err)
	}
}
