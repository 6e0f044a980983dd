package keylock

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestLocks_SameKeyExcludes(t *testing.T) {
	var l Locks
	var inside, maxInside atomic.Int32
	var wg sync.WaitGroup
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			unlock, err := l.Lock(context.Background(), "k")
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
			unlock()
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
	u1, _ := l.Lock(context.Background(), "a")
	defer u1()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	u2, err := l.Lock(ctx, "b") // would time out if keys shared a lock
	if err != nil {
		t.Fatal(err)
	}
	u2()
}

func TestLocks_WaitHonoursContext(t *testing.T) {
	var l Locks
	unlock, _ := l.Lock(context.Background(), "k")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if _, err := l.Lock(ctx, "k"); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err = %v, want DeadlineExceeded", err)
	}
	unlock()
	if l.Len() != 0 {
		t.Errorf("%d keys leaked after a timed-out wait", l.Len())
	}
}

func TestLocks_LockAllOrdersKeys(t *testing.T) {
	var l Locks
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			keys := []string{"x", "y", "x", ""}
			if i%2 == 0 {
				keys = []string{"y", "x"}
			}
			unlock, err := l.LockAll(context.Background(), keys...)
			if err != nil {
				t.Error(err)
				return
			}
			unlock()
		}()
	}
	wg.Wait() // a deadlock would hang here
	if l.Len() != 0 {
		t.Errorf("%d keys leaked", l.Len())
	}
}
