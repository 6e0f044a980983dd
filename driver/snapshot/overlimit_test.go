package snapshot

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/pool"
)

// TestRestoreOverQgroup: a btrfs pool made to enforce capacities (quota:
// off, then required) holds a volume from before, a plain directory with
// more data than its capacity. A clone of it, or a restore of its
// snapshot, is a reflink copy into a subvolume limited to that capacity;
// FICLONE is not held to the limit, so the copy succeeds: the restore must
// still fail (pool.ErrOutOfRange) and leave no volume, directory, intent
// or charge.
func TestRestoreOverQgroup(t *testing.T) {
	f := newFix(t, "btrfs", 320, pool.Spec{Capacity: pool.Bytes(200 * miB), Quota: pool.QuotaOff})
	v := f.mustCreate("v", 4*miB)
	big := make([]byte, 12*miB)
	for i := range big {
		big[i] = byte(i * 7)
	}
	if err := os.WriteFile(filepath.Join(f.volDir(v.ID), "big"), big, 0o600); err != nil {
		t.Fatal(err)
	}
	s := f.snapshot("s", v.ID)
	f.cfg.Pools[0].Quota = pool.QuotaRequired
	f.restart()
	allocated := f.pool().Usage(nil).Allocated
	for what, src := range map[string][2]string{"restore": {s.ID, ""}, "clone": {"", v.ID}} {
		_, err := f.restore(what, src[0], src[1])
		if !errors.Is(err, pool.ErrOutOfRange) {
			t.Errorf("%s of 12 MiB into 4 MiB: %v, want ErrOutOfRange", what, err)
		}
		if f.vols.NameTaken(what) {
			t.Errorf("the failed %s left a volume", what)
		}
	}
	if left := entries(t, layout.PoolVolumesDir(f.disk)); len(left) != 1 || left[0] != v.ID {
		t.Errorf("volume directories: %q, want only the source's", left)
	}
	if left := entries(t, filepath.Join(f.stateDir, layout.RestoresDir)); len(left) != 0 {
		t.Errorf("restore intents left: %q", left)
	}
	if got := f.pool().Usage(nil).Allocated; got != allocated {
		t.Errorf("allocated %d after the failures, want %d", got, allocated)
	}
	// What fits is restored.
	if err := os.Remove(filepath.Join(f.volDir(v.ID), "big")); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.volDir(v.ID), "small"), big[:2*miB], 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := f.restore("fits", "", v.ID); err != nil {
		t.Errorf("clone of 2 MiB into 4 MiB: %v", err)
	}
}
