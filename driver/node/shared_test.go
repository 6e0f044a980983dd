package node

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"

	"github.com/localdisk-csi/localdisk/driver/mounts"
	"github.com/localdisk-csi/localdisk/driver/pool"
	"github.com/localdisk-csi/localdisk/driver/volume"
	"github.com/localdisk-csi/localdisk/driver/volume/volumetest"
)

// A ROOT volume staged at a path has no mount there, so another volume's
// stage at that path (a whole disk, which binds its mark there) must be
// refused by the ROOT volume's staging record, as the reverse order is
// refused by the disk's mount: one staging path, one volume.
func TestNodeStageVolume_PathRecordedForAnotherVolume(t *testing.T) {
	e := newEnv(t)
	staging := e.staged(t)
	disks := t.TempDir()
	d1 := filepath.Join(disks, "d1")
	if err := os.Mkdir(d1, 0o755); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		if os.Getenv("SKIP_TESTS_USING_ROOT") == "1" {
			t.Skip("needs root (a disk: a tmpfs)")
		}
		t.Fatal("needs root (a disk: a tmpfs); set SKIP_TESTS_USING_ROOT=1 to skip")
	}
	if err := unix.Mount("tmpfs", d1, "tmpfs", 0, "size=64m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(d1, unix.MNT_DETACH) })
	e.vols.Close()
	cfg := &pool.Config{Pools: []pool.Spec{
		{Name: "r", Kind: pool.Root, Path: filepath.Join(e.dir, "root"), Capacity: pool.Bytes(1 << 30)},
		{Name: "m", Kind: pool.Mount, Disks: []pool.DiskSpec{{Path: d1}}}}}
	vols, err := volume.New(filepath.Join(e.dir, "state"), cfg, volumetest.Discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vols.Close() })
	e.vols = vols
	e.s = &Server{Mounts: mounts.New(vols, e.fake), Volumes: vols, NodeID: "n1", TopologyKey: "topology.localdisk/node"}
	sel, err := vols.ParseSelector(map[string]string{"pool": "m"})
	if err != nil {
		t.Fatal(err)
	}
	disk, err := vols.Create(context.Background(), volume.CreateRequest{Name: "disk", Selector: sel})
	if err != nil {
		t.Fatal(err)
	}
	binds := len(e.fake.Binds())
	wantCode(t, "stage of a disk where a ROOT volume is staged", e.stage(disk.ID, staging, rw), codes.FailedPrecondition)
	if len(e.fake.Binds()) != binds || e.at(t, staging) != nil {
		t.Errorf("something was mounted at %s: binds %+v", staging, e.fake.Binds())
	}
	if err := e.unstage(e.id, staging); err != nil {
		t.Fatalf("unstage of the ROOT volume: %v", err)
	}
	if err := e.stage(disk.ID, staging, rw); err != nil {
		t.Errorf("stage of the disk once the path is free: %v", err)
	}
}
