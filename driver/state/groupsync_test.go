package state

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

// Every Sync returns only after an fsync that started after it was called,
// and concurrent callers share fsyncs.
func TestGroupSync_SharesAndOrders(t *testing.T) {
	var calls atomic.Int64
	var changes atomic.Int64 // changes made before their Sync
	var durable atomic.Int64 // changes covered by the last finished fsync
	release := make(chan struct{})
	g := newGroupSync(func() error {
		calls.Add(1)
		covered := changes.Load() // what this fsync covers: made before it started
		<-release
		durable.Store(covered)
		return nil
	})
	const n = 64
	var wg sync.WaitGroup
	bad := make(chan int64, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mine := changes.Add(1)
			if err := g.Sync(); err != nil {
				t.Error(err)
			}
			if durable.Load() < mine {
				bad <- mine
			}
		}()
	}
	go func() {
		for {
			select {
			case release <- struct{}{}:
			case <-done(&wg):
				return
			}
		}
	}()
	wg.Wait()
	close(bad)
	for b := range bad {
		t.Errorf("Sync of change %d returned before an fsync covering it", b)
	}
	if c := calls.Load(); c >= n || c < 1 {
		t.Errorf("%d fsyncs for %d concurrent changes: want fewer, at least one", c, n)
	}
}

func done(wg *sync.WaitGroup) <-chan struct{} {
	ch := make(chan struct{})
	go func() { wg.Wait(); close(ch) }()
	return ch
}

// A failed fsync fails that Sync and every later one.
func TestGroupSync_FailureSticks(t *testing.T) {
	fail := errors.New("EIO")
	n := 0
	g := newGroupSync(func() error {
		n++
		if n == 2 {
			return fail
		}
		return nil
	})
	if err := g.Sync(); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := g.Sync(); !errors.Is(err, fail) {
			t.Errorf("sync %d after the failure: %v", i, err)
		}
	}
	if err := g.Err(); !errors.Is(err, fail) {
		t.Errorf("Err after the failure: %v", err)
	}
}

// After a failed fsync of the records directory, a Put or a Delete fails
// with nothing changed on disk.
func TestStore_FailsUnchangedAfterAFailedSync(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Put(&Record{ID: "v-1", Name: "a", Pool: "p", Kind: "root", Capacity: 1, Phase: Ready}); err != nil {
		t.Fatal(err)
	}
	fail := errors.New("EIO")
	s.files.dirSync = newGroupSync(func() error { return fail })
	if err := s.Put(&Record{ID: "v-2", Name: "b", Pool: "p", Kind: "root", Capacity: 1, Phase: Ready}); !errors.Is(err, fail) {
		t.Fatalf("Put when the sync fails: %v", err)
	}
	if err := s.Put(&Record{ID: "v-3", Name: "c", Pool: "p", Kind: "root", Capacity: 1, Phase: Ready}); !errors.Is(err, fail) {
		t.Fatalf("Put after a failed sync: %v", err)
	}
	if err := s.Delete("v-1"); !errors.Is(err, fail) {
		t.Fatalf("Delete after a failed sync: %v", err)
	}
	recs, _, err := s.Load()
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range recs {
		ids = append(ids, r.ID)
	}
	// v-2's rename reached the directory before its fsync failed; v-3 and
	// the delete of v-1 changed nothing.
	if len(ids) != 2 || ids[0] != "v-1" || ids[1] != "v-2" {
		t.Errorf("records on disk: %v, want v-1 (not deleted) and v-2 (renamed before the failed sync), no v-3", ids)
	}
}
