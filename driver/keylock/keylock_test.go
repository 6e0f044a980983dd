package keylock

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The classes of the tests' keys, lowest first.
const (
	low Class = iota
	mid
	high
)

func k(c Class, name string) Key { return Key{Class: c, Name: name} }

func lockOne(t *testing.T, l *Locks, key Key) *Held {
	t.Helper()
	h, err := l.LockAll(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestLocks_SameKeyExcludes(t *testing.T) {
	var l Locks
	var inside, maxInside atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, err := l.LockAll(context.Background(), k(mid, "k"))
			if err != nil {
				t.Error(err)
				return
			}
			n := inside.Add(1)
			for {
				m := maxInside.Load()
				if n <= m || maxInside.CompareAndSwap(m, n) {
					break
				}
			}
			inside.Add(-1)
			h.Unlock()
		}()
	}
	wg.Wait()
	if maxInside.Load() != 1 {
		t.Errorf("%d holders of one key at once", maxInside.Load())
	}
	if l.Len() != 0 {
		t.Errorf("%d keys leaked", l.Len())
	}
}

func TestLocks_DifferentKeysDoNotBlock(t *testing.T) {
	var l Locks
	h1 := lockOne(t, &l, k(mid, "a"))
	defer h1.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// Would time out if keys shared a lock, or if one name in two classes
	// were one key.
	for _, key := range []Key{k(mid, "b"), k(high, "a")} {
		h2, err := l.LockAll(ctx, key)
		if err != nil {
			t.Fatalf("%v: %v", key, err)
		}
		h2.Unlock()
	}
}

func TestLocks_WaitHonoursContext(t *testing.T) {
	var l Locks
	h := lockOne(t, &l, k(mid, "k"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := l.LockAll(ctx, k(low, "free"), k(mid, "k")); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want DeadlineExceeded", err)
	}
	h.Unlock()
	h.Unlock() // a second Unlock does nothing
	if l.Len() != 0 {
		t.Errorf("%d keys leaked after a timed-out wait (the free key it took too)", l.Len())
	}
}

// LockAll takes keys by class, then name, whatever order they are given
// in: callers naming the same keys in opposite orders never deadlock, and
// the class decides before the name ("path:a" after "id:z").
func TestLocks_LockAllOrdersKeysByClass(t *testing.T) {
	if got := sortedUnique([]Key{k(high, "a"), k(mid, "z"), {}, k(low, "m"), k(mid, "z"), k(mid, "b")}); len(got) != 4 ||
		got[0] != k(low, "m") || got[1] != k(mid, "b") || got[2] != k(mid, "z") || got[3] != k(high, "a") {
		t.Errorf("order = %v, want class then name, once each, no zero key", got)
	}
	var l Locks
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			keys := []Key{k(high, "a"), k(mid, "z"), k(high, "a"), {}}
			if i%2 == 0 {
				keys = []Key{k(mid, "z"), k(high, "a")}
			}
			h, err := l.LockAll(context.Background(), keys...)
			if err != nil {
				t.Error(err)
				return
			}
			h.Unlock()
		}()
	}
	wg.Wait() // a deadlock would hang here
	if l.Len() != 0 {
		t.Errorf("%d keys leaked", l.Len())
	}
}

// An operation that takes more keys later takes them through what it
// holds, and only of a higher class: a key out of order is refused with a
// panic before it is waited for. Releasing the later keys alone lets the
// operation take others of their class.
func TestHeld_LaterKeysOnlyOfAHigherClass(t *testing.T) {
	var l Locks
	ctx := context.Background()
	h := lockOne(t, &l, k(mid, "name"))
	for _, key := range []Key{k(mid, "other"), k(low, "x")} {
		func() {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(r.(string), "increasing class") {
					t.Errorf("Lock(%v) while holding a mid key: recovered %v, want a panic", key, r)
				}
			}()
			h.Lock(ctx, key)
		}()
	}
	if l.Len() != 1 {
		t.Fatalf("%d keys locked after refused keys, want the one held", l.Len())
	}
	for _, id := range []string{"id-1", "id-2"} { // one after the other
		unlock, err := h.Lock(ctx, k(high, id))
		if err != nil {
			t.Fatal(err)
		}
		if l.Len() != 2 {
			t.Errorf("%d keys locked, want 2", l.Len())
		}
		unlock()
		unlock() // once only
	}
	unlock, err := h.Lock(ctx, k(high, "kept"))
	if err != nil {
		t.Fatal(err)
	}
	h.Unlock() // releases the later key too
	unlock()   // already released: nothing to do
	if l.Len() != 0 {
		t.Errorf("%d keys leaked", l.Len())
	}
}
