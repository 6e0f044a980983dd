// Package keylock provides per-key mutual exclusion whose waits honour a
// context, so that a CSI request that cannot get its volume before its
// deadline fails instead of piling up.
//
// The order in which keys are taken is a property of the keys: each has a
// Class, and an operation takes its keys in increasing class, and within a
// class in increasing name. LockAll takes a set of keys in that order, and
// an operation that needs more keys later takes them through what it holds
// (Held.Lock), which refuses a key whose class is not above every key held.
// Two operations therefore never wait for each other in a cycle, whatever
// the order their code names the keys in.
package keylock

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Class ranks a key: keys of a lower class are taken first.
type Class uint8

// Key is one lock: its class and its name within the class. The zero Key
// is no lock (LockAll skips it).
type Key struct {
	Class Class
	Name  string
}

func (k Key) String() string { return fmt.Sprintf("%d:%s", k.Class, k.Name) }

// compare orders keys as they are taken: by class, then by name.
func compare(a, b Key) int {
	return cmp.Or(cmp.Compare(a.Class, b.Class), strings.Compare(a.Name, b.Name))
}

// Locks is a set of keyed locks. The zero value is ready to use.
type Locks struct {
	mu   sync.Mutex
	held map[Key]*entry
}

type entry struct {
	ch   chan struct{} // holds one token while the key is locked
	refs int
}

// Held is the keys one operation holds. It belongs to that operation's
// goroutine.
type Held struct {
	l    *Locks
	keys []Key // in the order taken: increasing
}

// LockAll takes the keys in their order (class, then name; duplicates and
// zero keys skipped), waiting until each is free or ctx is done (then it
// releases what it took and returns ctx.Err()). The operation releases
// them with Unlock, and may take keys of a higher class with Lock.
func (l *Locks) LockAll(ctx context.Context, keys ...Key) (*Held, error) {
	h := &Held{l: l}
	if _, err := h.Lock(ctx, keys...); err != nil {
		return nil, err
	}
	return h, nil
}

// Lock takes more keys for the operation, as LockAll does; every one must
// be of a class above each key it holds, else Lock panics (a key taken out
// of order could deadlock: that is a bug in the caller). The returned
// function releases these keys alone, so that the operation can go on to
// other keys of their class; Unlock releases them too.
func (h *Held) Lock(ctx context.Context, keys ...Key) (unlock func(), err error) {
	keys = sortedUnique(keys)
	if len(keys) > 0 && len(h.keys) > 0 {
		if top := h.keys[len(h.keys)-1]; keys[0].Class <= top.Class {
			panic(fmt.Sprintf("keylock: key %v taken while holding %v: keys are taken in increasing class", keys[0], top))
		}
	}
	n := len(h.keys)
	for _, k := range keys {
		if err := h.l.lock(ctx, k); err != nil {
			h.release(n)
			return nil, err
		}
		h.keys = append(h.keys, k)
	}
	var once sync.Once
	return func() { once.Do(func() { h.release(n) }) }, nil
}

// Unlock releases every key the operation holds, the last taken first.
// Calling it again does nothing.
func (h *Held) Unlock() { h.release(0) }

// release releases the keys from the n-th one taken on (n 0: all); keys
// already released are not released again.
func (h *Held) release(n int) {
	for i := len(h.keys) - 1; i >= n; i-- {
		h.l.unlock(h.keys[i])
	}
	h.keys = h.keys[:min(n, len(h.keys))]
}

// lock takes one key, waiting until it is free or ctx is done.
func (l *Locks) lock(ctx context.Context, key Key) error {
	l.mu.Lock()
	if l.held == nil {
		l.held = map[Key]*entry{}
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
		return nil
	case <-ctx.Done():
		l.put(key, e)
		return ctx.Err()
	}
}

// unlock releases a key taken by lock.
func (l *Locks) unlock(key Key) {
	l.mu.Lock()
	e := l.held[key]
	l.mu.Unlock()
	<-e.ch
	l.put(key, e)
}

func (l *Locks) put(key Key, e *entry) {
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

// sortedUnique is keys in the order they are taken, without duplicates
// and zero keys.
func sortedUnique(keys []Key) []Key {
	out := slices.DeleteFunc(slices.Clone(keys), func(k Key) bool { return k == Key{} })
	slices.SortFunc(out, compare)
	return slices.Compact(out)
}
