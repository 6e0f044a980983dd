package quota

import (
	"fmt"
	"sync"
)

// The default range of project IDs that localdisk hands out: high enough
// to stay clear of the small IDs that administrators give projects by hand
// (/etc/projid), and below 2^32-1, which the kernel reads as "no ID".
const (
	DefaultFirstID uint32 = 1 << 20
	DefaultLastID  uint32 = 1<<32 - 2
)

// Prober tells whether a project ID is already in use on the filesystem
// (FS.InUse is one). An error stops the allocation: an ID that could not
// be checked is never handed out.
type Prober func(id uint32) (bool, error)

// Allocator hands out project IDs of one filesystem from a range, never
// the same ID twice while it is held, never ID 0, and never an ID that the
// Prober says the filesystem already uses (another tool's project, or a
// volume whose record is gone). Use one Allocator per filesystem (FS.Dev),
// shared by every pool on it. Its methods are safe for concurrent use.
//
// The Allocator keeps no state on disk: at start, mark the IDs that the
// volume records name with MarkUsed before the first Allocate.
type Allocator struct {
	first, last uint32
	probe       Prober

	mu   sync.Mutex
	next uint32              // where the next search starts
	used map[uint32]struct{} // held: allocated or marked, not yet released
}

// NewAllocator returns an Allocator for the IDs first..last (inclusive).
// first must be at least 1 and at most last. probe may be nil, when the
// filesystem has no quota to ask (then only the held IDs are avoided).
func NewAllocator(first, last uint32, probe Prober) (*Allocator, error) {
	if first == 0 || first > last || last == 1<<32-1 {
		return nil, fmt.Errorf("%w: project ID range %d-%d (must be within 1-%d)",
			ErrInvalid, first, last, DefaultLastID)
	}
	return &Allocator{first: first, last: last, probe: probe, next: first,
		used: make(map[uint32]struct{})}, nil
}

// MarkUsed records ids as held, as if allocated: IDs named by persisted
// volume records, so that they are never handed out again. IDs outside the
// range are remembered too (and so never returned) and 0 is ignored.
func (a *Allocator) MarkUsed(ids ...uint32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, id := range ids {
		if id != 0 {
			a.used[id] = struct{}{}
		}
	}
}

// Held reports whether id is held (allocated or marked and not released).
func (a *Allocator) Held(id uint32) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.used[id]
	return ok
}

// Allocate returns an ID of the range that is not held and that the
// Prober says is free, and holds it until Release. The search goes on
// from the ID after the last one handed out, wrapping to the start of the
// range, so a released ID is not reused at once. ErrExhausted: every ID of
// the range is held or in use. A Prober error is returned as is, wrapped.
func (a *Allocator) Allocate() (uint32, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	id := a.next
	for n := uint64(a.last) - uint64(a.first) + 1; n > 0; n-- {
		cur := id
		if id == a.last {
			id = a.first
		} else {
			id++
		}
		if _, held := a.used[cur]; held {
			continue
		}
		if a.probe != nil {
			inUse, err := a.probe(cur)
			if err != nil {
				return 0, fmt.Errorf("checking project ID %d: %w", cur, err)
			}
			if inUse {
				continue
			}
		}
		a.used[cur] = struct{}{}
		a.next = id
		return cur, nil
	}
	return 0, fmt.Errorf("%w (%d-%d)", ErrExhausted, a.first, a.last)
}

// Release stops holding id, once its project holds nothing and has no
// limits any more (the volume's data is gone and FS.ClearLimit was
// called): otherwise the Prober keeps it from being handed out anyway.
// Releasing an ID that is not held does nothing.
func (a *Allocator) Release(id uint32) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.used, id)
}
