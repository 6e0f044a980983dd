package volume

import (
	"testing"

	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/pool"
	"github.com/localdisk-csi/localdisk/driver/state"
)

// An erase asked from a stale read (the record is no longer `deleting`:
// erased, dropped and the disk handed out again) starts nothing.
func TestStartErase_StaleRecordStartsNothing(t *testing.T) {
	f := newFixture(t)
	v, err := f.create("v", MiB, 0, map[string]string{layout.ParamPool: "r"})
	if err != nil {
		t.Fatal(err)
	}
	var stale state.Record
	for _, r := range f.m.Records() {
		if r.ID == v.ID {
			stale = r
		}
	}
	stale.Phase, stale.Erase = state.Deleting, &state.Erase{Method: string(pool.EraseZero)}
	// Had the erase run, it would fail: pool "r" has no disk to erase.
	if err := <-f.m.startErase(f.m.pools["r"], &stale); err != nil {
		t.Fatalf("an erase ran for a volume whose record does not ask for one: %v", err)
	}
	f.m.ResumeErases() // the current record is ready: nothing to resume
	if f.m.EraseBacklog() != 0 {
		t.Fatal("a ready volume counts as an erase backlog")
	}
	if _, err := f.m.Lookup(v.ID); err != nil {
		t.Fatalf("the volume is gone: %v", err)
	}
}

// A nameless record is allowed only for MOUNT (state.KindMount): it must
// name the same kind as the pool model.
func TestKindMountIsPoolMount(t *testing.T) {
	if string(pool.Mount) != state.KindMount {
		t.Fatalf("state.KindMount = %q, pool.Mount = %q", state.KindMount, pool.Mount)
	}
}
