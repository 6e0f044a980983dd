package snapshot

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/pool"
	"github.com/localdisk-csi/localdisk/driver/volume"
)

// TestMethods takes a snapshot of a volume holding data on each kind of
// pool, changes and deletes the source, restores the snapshot and clones
// the restored volume, and checks the data at each step, the charges, the
// idempotency of Create, a restart, and that deleting the snapshot
// leaves nothing.
func TestMethods(t *testing.T) {
	for _, tc := range []struct {
		name, fstype string
		spec         pool.Spec
		want         Method
	}{
		{"btrfs", "btrfs", pool.Spec{Quota: pool.QuotaRequired}, Btrfs},
		{"btrfs-noquota", "btrfs", pool.Spec{Quota: pool.QuotaOff}, Reflink},
		{"xfs-reflink", "xfs-reflink", pool.Spec{}, Reflink},
		{"ext4-copy", "ext4", pool.Spec{Snapshots: pool.SnapshotsCopy}, Copy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.spec.Capacity = pool.Bytes(200 * miB)
			f := newFix(t, tc.fstype, 320, tc.spec)
			if m, why := f.snaps.MethodOf(f.pool()); m != tc.want {
				t.Fatalf("method %s (%v), want %s", m, why, tc.want)
			}
			src := f.mustCreate("src", 16*miB)
			data := sampleTree(t)
			data.write(t, f.volDir(src.ID))

			s := f.snapshot("s1", src.ID)
			if s.ID != layout.SnapshotID("p", "s1") || s.Source != src.ID || s.Size != 16*miB {
				t.Errorf("snapshot = %+v", s)
			}
			again, err := f.snaps.Create(ctx(t), "s1", src.ID)
			if err != nil || again.ID != s.ID || !again.Created.Equal(s.Created) {
				t.Errorf("repeated Create = %+v, %v; want the same snapshot", again, err)
			}
			other := f.mustCreate("other", 8*miB)
			if _, err := f.snaps.Create(ctx(t), "s1", other.ID); !errors.Is(err, ErrAlreadyExists) {
				t.Errorf("Create of the name from another volume = %v, want ErrAlreadyExists", err)
			}
			if u := f.pool().Usage(nil); u.Allocated != 40*miB {
				t.Errorf("allocated %d MiB, want 40 (16 + 8 volumes, 16 snapshot)", u.Allocated/miB)
			}
			// The source changes, then goes: the snapshot keeps its data.
			if err := os.WriteFile(filepath.Join(f.volDir(src.ID), "a.txt"), []byte("changed"), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := f.vols.Delete(ctx(t), src.ID); err != nil {
				t.Fatal(err)
			}
			if got, err := f.snaps.Get(s.ID); err != nil || !got.Ready {
				t.Fatalf("snapshot after its source's delete: %+v, %v", got, err)
			}

			restored, err := f.restore("restored", s.ID, "")
			if err != nil {
				t.Fatal(err)
			}
			if restored.Capacity < 16*miB {
				t.Errorf("restored capacity %d, want at least the source's", restored.Capacity)
			}
			data.check(t, f.volDir(restored.ID))
			if again, err := f.restore("restored", s.ID, ""); err != nil || again.ID != restored.ID {
				t.Errorf("replayed restore = %v, %v", again, err)
			}
			if _, err := f.create("restored", 16*miB, nil); !errors.Is(err, volume.ErrAlreadyExists) {
				t.Errorf("create of the restored name without its source = %v, want ErrAlreadyExists", err)
			}
			// A restored volume is writable and its own.
			if err := os.WriteFile(filepath.Join(f.volDir(restored.ID), "new"), []byte("x"), 0o600); err != nil {
				t.Errorf("restored volume refuses a write: %v", err)
			}
			clone, err := f.restore("clone", "", restored.ID)
			if err != nil {
				t.Fatal(err)
			}
			data.check(t, f.volDir(clone.ID))
			if len(entries(t, filepath.Join(f.stateDir, layout.RestoresDir))) != 0 {
				t.Error("restore intents left after the restores")
			}

			f.restart()
			if got, err := f.snaps.Get(s.ID); err != nil || !got.Ready {
				t.Fatalf("snapshot after a restart: %+v, %v", got, err)
			}
			if u := f.pool().Usage(nil); u.Allocated != 8*miB+16*miB+restored.Capacity+clone.Capacity {
				t.Errorf("after a restart: allocated %d MiB, want 8+16+%d+%d", u.Allocated/miB, restored.Capacity/miB, clone.Capacity/miB)
			}
			if err := f.snaps.Delete(ctx(t), s.ID); err != nil {
				t.Fatal(err)
			}
			if err := f.snaps.Delete(ctx(t), s.ID); err != nil {
				t.Errorf("second delete: %v", err)
			}
			if _, err := f.snaps.Get(s.ID); !errors.Is(err, ErrNotFound) {
				t.Errorf("Get after delete = %v, want ErrNotFound", err)
			}
			if left := entries(t, layout.PoolSnapshotsDir(f.disk)); len(left) != 0 {
				t.Errorf("snapshot data left: %q", left)
			}
			if u := f.pool().Usage(nil); u.Allocated != 8*miB+restored.Capacity+clone.Capacity {
				t.Errorf("after the delete: allocated %d MiB", u.Allocated/miB)
			}
			if _, err := f.restore("late", s.ID, ""); !errors.Is(err, ErrNotFound) {
				t.Errorf("restore of a deleted snapshot = %v, want ErrNotFound", err)
			}
		})
	}
}

// TestRefused: an ext4 pool without `snapshots: copy` refuses snapshots
// and clones, naming the option.
func TestRefused(t *testing.T) {
	f := newFix(t, "ext4", 64, pool.Spec{})
	v := f.mustCreate("v", 8*miB)
	_, err := f.snaps.Create(ctx(t), "s", v.ID)
	if !errors.Is(err, ErrNotSupported) || !errors.Is(err, volume.ErrInvalid) {
		t.Errorf("Create on ext4 = %v, want ErrNotSupported", err)
	}
	if err == nil || !strings.Contains(err.Error(), "snapshots: copy") {
		t.Errorf("the error does not name the option: %v", err)
	}
	if _, err := f.restore("c", "", v.ID); !errors.Is(err, ErrNotSupported) {
		t.Errorf("clone on ext4 = %v, want ErrNotSupported", err)
	}
	if _, err := f.snaps.Create(ctx(t), "s", "p-nosuchvolume"); !errors.Is(err, volume.ErrNotFound) {
		t.Errorf("Create of a missing volume = %v, want volume.ErrNotFound", err)
	}
	if _, err := f.restore("c", "p-snap-00000000000000000000000000000000", ""); !errors.Is(err, ErrNotFound) {
		t.Errorf("restore of a missing snapshot = %v, want ErrNotFound", err)
	}
}
