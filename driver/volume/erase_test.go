package volume

import (
	"context"
	"errors"
	"testing"
	"time"

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
	if err := <-f.m.erasing.Start(f.m.pools["r"], &stale); err != nil {
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

// Close stops the background erases and waits for them: an erase running
// when Close is called sees its context end and has returned when Close
// returns; none starts afterwards. (Its record stays `deleting`, with the
// progress it recorded, and the next start resumes it.)
func TestClose_StopsAndWaitsForErases(t *testing.T) {
	f := newFixture(t)
	m := f.m
	r := &state.Record{ID: "m-disk", Pool: "m", Kind: state.KindMount, Phase: state.Deleting,
		Erase: &state.Erase{Method: string(pool.EraseZero)}}
	m.recs.Add(r) // a disk being erased (no such pool: the erase below is a stand-in)
	started, returned := make(chan struct{}), make(chan struct{})
	m.erasing.Run = func(ctx context.Context, _ *Pool, got *state.Record) error {
		got.Erase.Offset = 1 << 30 // the erase's own copy: the index's is not touched
		close(started)
		<-ctx.Done()
		time.Sleep(50 * time.Millisecond) // a last step: Close must wait for it
		close(returned)
		return ctx.Err()
	}
	done := m.erasing.Start(nil, r)
	<-started
	if again := m.erasing.Start(nil, r); again == nil {
		t.Fatal("joining the running erase")
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-returned:
	default:
		t.Fatal("Close returned before the erase it stopped")
	}
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("the stopped erase returned %v, want context.Canceled", err)
	}
	if err := <-m.erasing.Start(nil, r); !errors.Is(err, ErrBusy) {
		t.Errorf("an erase asked for after Close: %v, want ErrBusy (not started)", err)
	}
	if got := m.recs.Record(r.ID); got == nil || got.Phase != state.Deleting || got.Erase.Offset != 0 {
		t.Errorf("the record after Close: %+v, want it deleting as the erase last recorded it", got)
	}
}
