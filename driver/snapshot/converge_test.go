package snapshot

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/pool"
	"github.com/localdisk-csi/localdisk/driver/state"
)

// TestNoSpace: a copy that does not fit its filesystem fails cleanly. A
// snapshot whose copy fails leaves no data, no record and no charge, and
// the next Create of its name tries again; a restore that does not fit
// leaves no volume, no directory and no intent.
func TestNoSpace(t *testing.T) {
	f := newFix(t, "ext4", 64, pool.Spec{Snapshots: pool.SnapshotsCopy, Capacity: pool.Bytes(1 << 30)})
	v := f.mustCreate("v", 8*miB)
	// Accounted, not enforced: the volume holds more than its capacity.
	big := make([]byte, 20*miB)
	for i := range big {
		big[i] = byte(i * 7)
	}
	if err := os.WriteFile(filepath.Join(f.volDir(v.ID), "big"), big, 0o600); err != nil {
		t.Fatal(err)
	}
	s := f.snapshot("fits", v.ID) // 40 of about 58 MiB used now
	if err := os.WriteFile(filepath.Join(f.volDir(v.ID), "big2"), big[:6*miB], 0o600); err != nil {
		t.Fatal(err)
	}
	allocated := f.pool().Usage(nil).Allocated
	_, err := f.snaps.Create(ctx(t), "too-big", v.ID)
	if err == nil {
		// Answered not ready: the failure is the next answer.
		_, err = f.snaps.Create(ctx(t), "too-big", v.ID)
	}
	if !errors.Is(err, pool.ErrInsufficientCapacity) {
		t.Errorf("snapshot that does not fit: %v, want ErrInsufficientCapacity", err)
	}
	if left := entries(t, layout.PoolSnapshotsDir(f.disk)); len(left) != 1 || left[0] != s.ID {
		t.Errorf("snapshot data after the failure: %q, want only %s", left, s.ID)
	}
	if got := f.pool().Usage(nil).Allocated; got != allocated {
		t.Errorf("allocated %d after a failed snapshot, want %d", got, allocated)
	}
	if len(f.snaps.List()) != 1 {
		t.Errorf("snapshots listed: %d, want 1", len(f.snaps.List()))
	}
	_, err = f.restore("r", s.ID, "")
	if !errors.Is(err, pool.ErrInsufficientCapacity) {
		t.Errorf("restore that does not fit: %v, want ErrInsufficientCapacity", err)
	}
	if f.vols.NameTaken("r") {
		t.Error("the failed restore left a volume")
	}
	if left := entries(t, layout.PoolVolumesDir(f.disk)); len(left) != 1 {
		t.Errorf("volume directories after the failed restore: %q, want only the source's", left)
	}
	if left := entries(t, filepath.Join(f.stateDir, layout.RestoresDir)); len(left) != 0 {
		t.Errorf("restore intents left: %q", left)
	}
	if got := f.pool().Usage(nil).Allocated; got != allocated {
		t.Errorf("allocated %d after a failed restore, want %d", got, allocated)
	}
}

// TestConverge makes what crashes leave (a restore intent with a half
// volume, a restore intent whose volume was recorded, a `copying` and a
// `deleting` snapshot, snapshot data without a record) and checks that a
// start converges each: nothing half-done is listed, nothing is left.
func TestConverge(t *testing.T) {
	f := newFix(t, "ext4", 64, pool.Spec{Snapshots: pool.SnapshotsCopy})
	v := f.mustCreate("v", 8*miB)
	if err := os.WriteFile(filepath.Join(f.volDir(v.ID), "f"), []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	ready := f.snapshot("ready", v.ID)
	done := f.mustCreate("done", 8*miB) // a restore whose record was written
	f.stop()

	put := func(dir, key string, v any) {
		t.Helper()
		files, err := state.OpenFiles(f.stateDir, dir)
		if err != nil {
			t.Fatal(err)
		}
		defer files.Close()
		if err := files.Put(key, v); err != nil {
			t.Fatal(err)
		}
	}
	half := layout.DirVolumeID("p", "half")
	if err := os.MkdirAll(filepath.Join(f.volDir(half), "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.volDir(half), "sub", "x"), []byte("partial"), 0o600); err != nil {
		t.Fatal(err)
	}
	put(layout.RestoresDir, half, &Restore{Version: Version, Volume: half, Pool: "p", Source: ready.ID})
	put(layout.RestoresDir, done.ID, &Restore{Version: Version, Volume: done.ID, Pool: "p", Source: ready.ID})
	for _, r := range []*Record{
		{Version: Version, ID: layout.SnapshotID("p", "copying"), Name: "copying", Pool: "p", Source: v.ID, Capacity: 8 * miB, Phase: Copying, Method: Copy},
		{Version: Version, ID: layout.SnapshotID("p", "deleting"), Name: "deleting", Pool: "p", Source: v.ID, Capacity: 8 * miB, Phase: Deleting, Method: Copy},
	} {
		if err := os.MkdirAll(filepath.Join(layout.PoolSnapshotsDir(f.disk), r.ID, "d"), 0o700); err != nil {
			t.Fatal(err)
		}
		put(layout.SnapshotsDir, r.ID, r)
	}
	orphan := layout.SnapshotID("p", "orphan")
	if err := os.MkdirAll(filepath.Join(layout.PoolSnapshotsDir(f.disk), orphan, "d"), 0o700); err != nil {
		t.Fatal(err)
	}

	f.start()
	list := f.snaps.List()
	if len(list) != 1 || list[0].ID != ready.ID || !list[0].Ready {
		t.Errorf("snapshots after start-up: %+v, want only %s, ready", list, ready.ID)
	}
	if left := entries(t, layout.PoolSnapshotsDir(f.disk)); len(left) != 1 || left[0] != ready.ID {
		t.Errorf("snapshot data after start-up: %q, want only %s", left, ready.ID)
	}
	if _, err := os.Lstat(f.volDir(half)); !os.IsNotExist(err) {
		t.Errorf("half restore's directory after start-up: %v", err)
	}
	if _, err := os.Stat(f.volDir(done.ID)); err != nil {
		t.Errorf("a recorded restore's directory was touched: %v", err)
	}
	if left := entries(t, filepath.Join(f.stateDir, layout.RestoresDir)); len(left) != 0 {
		t.Errorf("restore intents after start-up: %q", left)
	}
	if left := entries(t, filepath.Join(f.stateDir, layout.SnapshotsDir)); len(left) != 1 {
		t.Errorf("snapshot records after start-up: %q", left)
	}
	if u := f.pool().Usage(nil); u.Allocated != 8*miB+8*miB+8*miB {
		t.Errorf("allocated %d MiB after start-up, want 24 (two volumes, one snapshot)", u.Allocated/miB)
	}
}

// TestRestoreOverLimit: the new volume's limit (a btrfs qgroup) is set
// before the data lands, so a restore whose data is bigger than the new
// volume's capacity fails (OUT_OF_RANGE) and leaves nothing. The source is
// a volume made while the pool had no quotas (a plain directory holding
// more than its capacity), so its snapshot and the restore are copies.
func TestRestoreOverLimit(t *testing.T) {
	f := newFix(t, "btrfs", 320, pool.Spec{Quota: pool.QuotaOff, Capacity: pool.Bytes(200 * miB)})
	v := f.mustCreate("v", 8*miB)
	big := make([]byte, 20*miB)
	for i := range big {
		big[i] = byte(i * 13)
	}
	if err := os.WriteFile(filepath.Join(f.volDir(v.ID), "big"), big, 0o600); err != nil {
		t.Fatal(err)
	}
	f.stop()
	f.cfg.Pools[0].Quota = pool.QuotaRequired
	f.start()
	if m, why := f.snaps.MethodOf(f.pool()); m != Btrfs {
		t.Fatalf("method %s (%v), want btrfs", m, why)
	}
	s := f.snapshot("s", v.ID)
	_, err := f.restore("r", s.ID, "")
	if !errors.Is(err, pool.ErrOutOfRange) {
		out, _ := exec.Command("btrfs", "qgroup", "show", "-re", f.disk).CombinedOutput()
		t.Fatalf("restore of 20 MiB into 8 MiB = %v, want a copy that does not fit\n%s", err, out)
	}
	t.Logf("restore over the limit: %v", err)
	if f.vols.NameTaken("r") {
		t.Error("the failed restore left a volume")
	}
	if left := entries(t, layout.PoolVolumesDir(f.disk)); len(left) != 1 || left[0] != v.ID {
		t.Errorf("volume directories after the failed restore: %q", left)
	}
	if left := entries(t, filepath.Join(f.stateDir, layout.RestoresDir)); len(left) != 0 {
		t.Errorf("restore intents left: %q", left)
	}
	// With room for the data, the same restore works.
	src, _, err := f.snaps.Source(s.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	r3, err := f.create("r3", 32*miB, src.(*source))
	if err != nil {
		t.Fatalf("restore into 32 MiB: %v", err)
	}
	if got, err := os.ReadFile(filepath.Join(f.volDir(r3.ID), "big")); err != nil || len(got) != len(big) {
		t.Errorf("restored data: %d bytes, %v", len(got), err)
	}
}
