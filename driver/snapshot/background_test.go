package snapshot

import (
	"context"
	"errors"
	"golang.org/x/sys/unix"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/pool"
	"github.com/localdisk-csi/localdisk/driver/volume"
)

// holdRestores makes each restore's background copy wait until the
// returned function is called (or the Manager closes).
func holdRestores(t *testing.T) (release func()) {
	gate := make(chan struct{})
	restoreHook = func(ctx context.Context) {
		select {
		case <-gate:
		case <-ctx.Done():
		}
	}
	t.Cleanup(func() { restoreHook = nil })
	return func() { close(gate) }
}

// TestRestoreOutlastsCaller: a restore whose copy outlasts the caller's
// context answers the context's error and goes on; the replayed
// CreateVolume answers once it is done, with the data.
func TestRestoreOutlastsCaller(t *testing.T) {
	f := newFix(t, "ext4", 128, pool.Spec{Snapshots: pool.SnapshotsCopy})
	v := f.mustCreate("v", 8*miB)
	data := sampleTree(t)
	data.write(t, f.volDir(v.ID))
	s := f.snapshot("s", v.ID)
	release := holdRestores(t)

	src, size, err := f.snaps.Source(s.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	sel, _ := f.vols.ParseSelector(nil)
	short, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = f.vols.Create(short, volume.CreateRequest{Name: "r", Required: size, Selector: sel, Source: src})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("restore past the caller's deadline = %v, want DeadlineExceeded", err)
	}
	if f.vols.NameTaken("r") {
		t.Error("a volume is recorded before its copy is done")
	}
	wait, cancelWait := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancelWait()
	if err := f.snaps.Delete(wait, s.ID); !errors.Is(err, volume.ErrBusy) {
		t.Errorf("delete of the snapshot a restore copies = %v, want ErrBusy", err)
	}
	// The filesystem fills meanwhile: it has room for the copy's data but
	// less than the volume's size beyond the reserve. The replay must not
	// ask for room again: the running copy took it at the first call.
	fillTo(t, f.pool().Dir, f.pool().Spec, 5*miB)
	release()
	r, err := f.restore("r", s.ID, "")
	if err != nil {
		t.Fatalf("replayed restore: %v", err)
	}
	data.check(t, f.volDir(r.ID))
	if left := entries(t, filepath.Join(f.stateDir, layout.RestoresDir)); len(left) != 0 {
		t.Errorf("restore intents left: %q", left)
	}
	if u := f.pool().Usage(nil); u.Allocated != 8*miB+8*miB+r.Capacity {
		t.Errorf("allocated %d MiB, want 16 + %d", u.Allocated/miB, r.Capacity/miB)
	}
}

// TestRestoreStoppedByClose: Close stops a restore's background copy and
// waits for it; the next start removes the half volume and its intent.
func TestRestoreStoppedByClose(t *testing.T) {
	f := newFix(t, "ext4", 128, pool.Spec{Snapshots: pool.SnapshotsCopy})
	v := f.mustCreate("v", 8*miB)
	if err := os.WriteFile(filepath.Join(f.volDir(v.ID), "f"), []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	holdRestores(t)
	short, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	src, size, err := f.snaps.Source("", v.ID)
	if err != nil {
		t.Fatal(err)
	}
	sel, _ := f.vols.ParseSelector(nil)
	if _, err := f.vols.Create(short, volume.CreateRequest{Name: "c", Required: size, Selector: sel, Source: src}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("clone past the caller's deadline = %v, want DeadlineExceeded", err)
	}
	id := layout.DirVolumeID("p", "c")
	if _, err := os.Stat(f.volDir(id)); err != nil {
		t.Fatalf("the clone's directory is not there while it is filled: %v", err)
	}
	done := make(chan struct{})
	go func() { f.restart(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Close did not stop the background copy")
	}
	if _, err := os.Lstat(f.volDir(id)); !os.IsNotExist(err) {
		t.Errorf("half clone after a restart: %v", err)
	}
	if left := entries(t, filepath.Join(f.stateDir, layout.RestoresDir)); len(left) != 0 {
		t.Errorf("restore intents after a restart: %q", left)
	}
	if f.vols.NameTaken("c") {
		t.Error("the half clone is recorded")
	}
}

// TestSnapshotCopyInBackground: a copy is cut only when it is done, so
// CreateSnapshot blocks until then (spec.md: "MUST block until the snapshot
// is cut"); a caller whose deadline passes gets it (DEADLINE_EXCEEDED) and
// the copy goes on; a repeated Create answers the same snapshot, ready. A
// snapshot still copying is neither listed nor got. Meanwhile the source
// volume's lock is free (its node operations go on), but DeleteVolume
// refuses it; a DeleteSnapshot cancels a copy that runs.
func TestSnapshotCopyInBackground(t *testing.T) {
	f := newFix(t, "ext4", 128, pool.Spec{Snapshots: pool.SnapshotsCopy})
	v := f.mustCreate("v", 8*miB)
	data := sampleTree(t)
	data.write(t, f.volDir(v.ID))
	gate := make(chan struct{})
	snapshotHook = func(ctx context.Context) {
		select {
		case <-gate:
		case <-ctx.Done():
		}
	}
	defer func() { snapshotHook = nil }()

	short, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if s, err := f.snaps.Create(short, "s", v.ID); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Create while the copy waits = %+v, %v; want DeadlineExceeded", s, err)
	}
	id := layout.SnapshotID("p", "s")
	if got, err := f.snaps.Get(id); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get while copying = %+v, %v; want ErrNotFound (not cut yet)", got, err)
	}
	for _, l := range f.snaps.List() {
		if l.ID == id {
			t.Errorf("a snapshot still copying is listed")
		}
	}
	if _, _, err := f.snaps.Source(id, ""); !errors.Is(err, ErrNotReady) {
		t.Errorf("restore from a snapshot still copying = %v, want ErrNotReady", err)
	}
	// The source's lock is free: a node operation would get it at once.
	unlock, err := f.vols.Lock(ctx(t), volume.IDKey(v.ID))
	if err != nil {
		t.Fatalf("the source's lock is held during the copy: %v", err)
	}
	unlock()
	if err := f.vols.Delete(ctx(t), v.ID); !errors.Is(err, volume.ErrInUse) {
		t.Errorf("DeleteVolume of the source during its copy = %v, want ErrInUse", err)
	}
	close(gate)
	s, err := f.snaps.Create(ctx(t), "s", v.ID)
	if err != nil || !s.Ready || s.ID != id {
		t.Fatalf("repeated Create = %+v, %v; want %s, ready", s, err, id)
	}
	r, err := f.restore("r", s.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	data.check(t, f.volDir(r.ID))

	// A delete cancels a copy that runs.
	snapshotHook = func(ctx context.Context) { <-ctx.Done() }
	short2, cancel2 := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel2()
	if _, err := f.snaps.Create(short2, "s2", v.ID); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second snapshot = %v; want DeadlineExceeded", err)
	}
	id2 := layout.SnapshotID("p", "s2")
	if err := f.snaps.Delete(ctx(t), id2); err != nil {
		t.Fatalf("delete of a snapshot still copying: %v", err)
	}
	if left := entries(t, layout.PoolSnapshotsDir(f.disk)); len(left) != 1 || left[0] != s.ID {
		t.Errorf("snapshot data: %q, want only %s", left, s.ID)
	}
	if err := f.vols.Delete(ctx(t), r.ID); err != nil {
		t.Errorf("delete of the restored volume: %v", err)
	}
}

// fillTo writes a file in dir until its filesystem has only left bytes
// free beyond spec's reserve.
func fillTo(t *testing.T, dir string, spec pool.Spec, left int64) {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	total, free := int64(st.Blocks)*st.Bsize, int64(st.Bavail)*st.Bsize
	n := free - spec.ReserveOf(total) - left
	if n <= 0 {
		return
	}
	if err := os.WriteFile(filepath.Join(dir, "filler"), make([]byte, n), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(filepath.Join(dir, "filler")) })
}
