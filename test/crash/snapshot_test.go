package crash

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/localdisk-csi/localdisk/driver/failpoint"
	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/test/testutil"
)

// snapReach says which snapshot operation reaches each snapshot crash
// point: snapshot (CreateSnapshot of a volume), unsnap (DeleteSnapshot),
// restore (CreateVolume from a snapshot), clone (from a volume).
var snapReach = map[string][]string{
	failpoint.SnapshotCopying:       {"snapshot"},
	failpoint.SnapshotData:          {"snapshot"},
	failpoint.SnapshotDeleteMarked:  {"unsnap"},
	failpoint.SnapshotDeleteRemoved: {"unsnap"},
	failpoint.RestoreIntent:         {"restore", "clone"},
	failpoint.RestoreFilled:         {"restore", "clone"},
	failpoint.CreateMkdir:           {"restore", "clone"}, // filled, no record yet
}

// snapPools are the PATH pools the sweep runs in: ext4 with full copies,
// and btrfs with quotas (btrfs snapshots, no copy: no `copying` phase).
var snapPools = map[string]testutil.EnvOptions{
	"copy":  {Snapshots: "copy"},
	"btrfs": {PathFS: "btrfs", PathQuota: "required", PathDiskMiB: 256},
}

// TestCrashSnapshotPoints kills the plugin (kill -9) at each snapshot,
// restore and clone crash point, in a PATH pool that copies (`snapshots:
// copy`) and in one of btrfs snapshots, and checks that a restart and the
// CO's retry converge: nothing half-done is listed or ready, the data is
// intact, nothing is left.
func TestCrashSnapshotPoints(t *testing.T) {
	for _, p := range failpoint.SnapshotPoints {
		if _, ok := snapReach[p]; !ok {
			t.Errorf("snapshot crash point %s is not covered: say in snapReach which operation reaches it", p)
		}
	}
	for point, ops := range snapReach {
		for _, op := range ops {
			for name, opts := range snapPools {
				if name == "btrfs" && point == failpoint.SnapshotCopying {
					continue // a btrfs snapshot is never `copying`
				}
				t.Run(point+"/"+op+"/"+name, func(t *testing.T) { snapCrashAndRetry(t, point, op, opts) })
			}
		}
	}
}

func snapCrashAndRetry(t *testing.T, point, op string, opts testutil.EnvOptions) {
	e := newEnv(t, "path", opts)
	src := e.create("src", "path")
	e.Must(os.WriteFile(filepath.Join(e.dataDir(src), "f0"), []byte("mine"), 0o600), "write the source")
	var snapID string
	if op != "snapshot" && op != "clone" {
		snapID = e.snapshot("snap", src.id)
	}
	target := &vol{name: "restored", pool: src.pool}
	do := func() error {
		switch op {
		case "snapshot":
			_, err := e.createSnapshot("snap", src.id)
			return err
		case "unsnap":
			ctx, cancel := e.Ctx()
			defer cancel()
			_, err := e.P.Controller().DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: snapID})
			return err
		case "restore":
			return e.createFrom(target, &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
				Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: snapID}}})
		default:
			return e.createFrom(target, &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{
				Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: src.id}}})
		}
	}
	e.arm(point)
	if err := do(); err == nil {
		t.Fatalf("%s succeeded: the plugin did not crash at %s", op, point)
	} else if status.Code(err) != codes.Unavailable {
		t.Logf("%s failed, but not because the plugin died: %v", op, err)
	}
	e.P.WaitCrash()
	e.restart()
	e.checkCanary()
	for _, s := range e.listSnapshots() {
		if s.GetReadyToUse() && op == "snapshot" {
			// Only a snapshot whose copy completed may be listed ready:
			// check its data below by restoring it.
			continue
		}
		if !s.GetReadyToUse() {
			t.Errorf("after the restart, snapshot %s is listed not ready: a half snapshot survived", s.GetSnapshotId())
		}
	}
	if err := do(); err != nil {
		t.Fatalf("%s retried after a crash at %s: %v", op, point, err)
	}
	switch op {
	case "snapshot":
		snapID = e.snapshot("snap", src.id)
		if opts.PathFS == "btrfs" { // a btrfs snapshot: a subvolume's root has inode 256
			var st syscall.Stat_t
			if err := syscall.Stat(filepath.Join(layout.PoolSnapshotsDir(e.PathDisk), snapID), &st); err != nil || st.Ino != 256 {
				t.Errorf("snapshot %s is not a btrfs subvolume: inode %d, %v", snapID, st.Ino, err)
			}
		}
		e.Must(e.createFrom(target, &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
			Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: snapID}}}), "restore the snapshot")
	case "unsnap":
		if n := len(e.listSnapshots()); n != 0 {
			t.Errorf("after the retried delete, %d snapshots listed", n)
		}
		snapID = ""
	}
	if op != "unsnap" {
		if data, err := os.ReadFile(filepath.Join(e.dataDir(target), "f0")); err != nil || string(data) != "mine" {
			t.Errorf("restored volume's data: %q, %v", data, err)
		}
		e.Must(e.Delete(target.id), "delete the restored volume")
	}
	if snapID != "" {
		ctx, cancel := e.Ctx()
		_, err := e.P.Controller().DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: snapID})
		cancel()
		e.Must(err, "delete the snapshot")
	}
	e.Must(e.Delete(src.id), "delete the source")
	e.CheckConverged()
	for _, dir := range []string{layout.PoolSnapshotsDir(e.PathDisk), filepath.Join(e.StateDir, layout.SnapshotsDir),
		filepath.Join(e.StateDir, layout.RestoresDir)} {
		if ents, _ := os.ReadDir(dir); len(ents) > 0 {
			t.Errorf("%s not empty at the end: %d entries", dir, len(ents))
		}
	}
	e.checkCanary()
}

// createSnapshot calls CreateSnapshot once.
func (e *env) createSnapshot(name, src string) (*csi.Snapshot, error) {
	ctx, cancel := e.Ctx()
	defer cancel()
	r, err := e.P.Controller().CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: name, SourceVolumeId: src})
	return r.GetSnapshot(), err
}

// snapshot takes a snapshot and waits until it is ready.
func (e *env) snapshot(name, src string) string {
	e.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		s, err := e.createSnapshot(name, src)
		e.Must(err, "CreateSnapshot")
		if s.GetReadyToUse() {
			return s.GetSnapshotId()
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("snapshot %s not ready after a minute", name)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// createFrom creates v (4 MiB, v's pool) from a content source, setting v.id.
func (e *env) createFrom(v *vol, cs *csi.VolumeContentSource) error {
	req := testutil.CreateReq(v.name, 4*testutil.MiB, map[string]string{"pool": v.pool})
	req.VolumeContentSource = cs
	ctx, cancel := e.Ctx()
	defer cancel()
	r, err := e.P.Controller().CreateVolume(ctx, req)
	if err == nil {
		v.id = r.GetVolume().GetVolumeId()
	}
	return err
}

func (e *env) listSnapshots() []*csi.Snapshot {
	e.t.Helper()
	ctx, cancel := e.Ctx()
	defer cancel()
	r, err := e.P.Controller().ListSnapshots(ctx, &csi.ListSnapshotsRequest{})
	e.Must(err, "ListSnapshots")
	var out []*csi.Snapshot
	for _, en := range r.GetEntries() {
		out = append(out, en.GetSnapshot())
	}
	return out
}
