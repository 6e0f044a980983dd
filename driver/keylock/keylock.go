// Package keylock provides per-key mutual exclusion whose waits honour a
// context, so that a CSI request that cannot get its volume before its
// deadline fails instead of piling up.
package keylock

import (
	"context"
	"sync"
)

// Locks is a set of named locks. The zero value is ready to use.
type Locks struct {
	mu   sync.Mutex
	held map[string]*entry
}

type entry struct {
	ch   chan struct{} // holds one token while the key is locked
	refs int
}

// Lock takes the key's lock, waiting until it is free or ctx is done (then
// it returns ctx.Err()). The returned function releases it.
func (l *Locks) Lock(ctx context.Context, key string) (unlock func(), err error) {
	l.mu.Lock()
	if l.held == nil {
		l.held = map[string]*entry{}
	}
	e := l.held[key]
	if e == nil {
		e = &entry{ch: make(chan struct{}, 1)}
		l.held[key] = e
	}
	e.refs++
	l.mu.Unlock()

	select {
	case e.ch <- struct{}{}:
		return func() { <-e.ch; l.put(key, e) }, nil
	case <-ctx.Done():
		l.put(key, e)
		return nil, ctx.Err()
	}
}

// LockAll takes several keys in a fixed (sorted, deduplicated) order so that
// two callers never deadlock.
func (l *Locks) LockAll(ctx context.Context, keys ...string) (unlock func(), err error) {
	keys = sortedUnique(keys)
	var unlocks []func()
	release := func() {
		for i := len(unlocks) - 1; i >= 0; i-- {
			unlocks[i]()
		}
	}
	for _, k := range keys {
		u, err := l.Lock(ctx, k)
		if err != nil {
			release()
			return nil, err
		}
		unlocks = append(unlocks, u)
	}
	return release, nil
}

func (l *Locks) put(key string, e *entry) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e.refs--; e.refs == 0 {
		delete(l.held, key)
	}
}

// Len is the number of keys locked or waited for (for tests).
func (l *Locks) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.held)
}

func sortedUnique(keys []string) []string {
	out := append([]string(nil), keys...)
	for i := 1; i < len(out); i++ { // insertion sort: a handful of keys
		for j := i; j > 0 && out[j] < out[j-1]; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	n := 0
	for _, k := range out {
		if k == "" || n > 0 && k == out[n-1] {
			continue
		}
		out[n] = k
		n++
	}
	return out[:n]
}
