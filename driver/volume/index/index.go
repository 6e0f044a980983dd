// Package index is the Manager's in-memory index of the volume records
// (by ID, by name, by claimed disk), with the durable write through
// state.Store kept behind it: a record is written, then indexed.
//
// The index owns the values it holds: it stores a copy of what it is given,
// and every read (Record, ByName, ByDisk, MountRecords, Records) hands out a
// copy, so that no record a caller holds is ever the one the index holds. A
// stored value is never changed: a change is a new value, written durably
// (Put, Drop) and then indexed in place of the old one.
package index

import (
	"maps"
	"sync"

	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/state"
)

// Index is the in-memory index of the records. Its mutex guards the maps
// and the generation; it is never held across a write to the store.
type Index struct {
	store *state.Store
	// shared is the volume_context map of a pool, shared by its records
	// (nil for a pool not configured).
	shared func(pool string) map[string]string

	mu      sync.RWMutex
	records map[string]*state.Record // by ID
	names   map[string]string        // name -> ID
	disks   map[string]string        // pool/disk ID -> ID of the MOUNT record holding it
	gen     uint64                   // bumped by every index change, and only then
}

// New is an empty index writing through store. shared gives a pool's
// volume_context map: a record whose context equals it holds that map, one
// per pool rather than one per volume.
func New(store *state.Store, shared func(pool string) map[string]string) *Index {
	return &Index{store: store, shared: shared,
		records: map[string]*state.Record{}, names: map[string]string{}, disks: map[string]string{}}
}

// Add stores a copy of r in the index, in place of the record of its ID,
// without writing it (a record loaded from the store); r stays the
// caller's.
func (x *Index) Add(r *state.Record) {
	r = r.Clone()
	r.Version = state.Version // as Store.Put wrote it
	if c := x.shared(r.Pool); c != nil && maps.Equal(r.Context, c) {
		r.Context = c // one shared map per pool, not one per volume
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	x.records[r.ID] = r
	if r.Name != "" {
		x.names[r.Name] = r.ID
	}
	if r.Kind == state.KindMount {
		x.disks[diskKey(r.Pool, layout.DiskOf(r.ID))] = r.ID
	}
	x.gen++
}

func (x *Index) remove(r *state.Record) {
	x.mu.Lock()
	defer x.mu.Unlock()
	delete(x.records, r.ID)
	if r.Name != "" && x.names[r.Name] == r.ID {
		delete(x.names, r.Name)
	}
	if k := diskKey(r.Pool, layout.DiskOf(r.ID)); x.disks[k] == r.ID {
		delete(x.disks, k)
	}
	x.gen++
}

func diskKey(pool, diskID string) string { return pool + "/" + diskID }

// Put writes a record durably, then indexes a copy of it: r stays the
// caller's, who may change it and put it again.
func (x *Index) Put(r *state.Record) error {
	if err := x.store.Put(r); err != nil {
		return err
	}
	x.Add(r)
	return nil
}

// Drop removes a record durably, then from the index.
func (x *Index) Drop(r *state.Record) error {
	if err := x.store.Delete(r.ID); err != nil {
		return err
	}
	x.remove(r)
	return nil
}

// Record returns a copy of the record of id, the caller's to change (and
// to put); nil when there is none.
func (x *Index) Record(id string) *state.Record {
	x.mu.RLock()
	defer x.mu.RUnlock()
	if r := x.records[id]; r != nil {
		return r.Clone()
	}
	return nil
}

// ByName returns a copy of the record of a CO's volume name.
func (x *Index) ByName(name string) *state.Record {
	x.mu.RLock()
	id, ok := x.names[name]
	x.mu.RUnlock()
	if !ok {
		return nil
	}
	return x.Record(id)
}

// ByDisk returns a copy of the record holding a MOUNT pool's disk.
func (x *Index) ByDisk(pool, diskID string) *state.Record {
	x.mu.RLock()
	id, ok := x.disks[diskKey(pool, diskID)]
	x.mu.RUnlock()
	if !ok {
		return nil
	}
	return x.Record(id)
}

// MountRecords copies the records of MOUNT volumes (through the disk index:
// not every record).
func (x *Index) MountRecords() []*state.Record {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make([]*state.Record, 0, len(x.disks))
	for _, id := range x.disks {
		out = append(out, x.records[id].Clone())
	}
	return out
}

// Records returns copies of every record, in any phase (see Clone: the
// caller's to change).
func (x *Index) Records() []state.Record {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := make([]state.Record, 0, len(x.records))
	for _, r := range x.records {
		out = append(out, *r.Clone())
	}
	return out
}

// Counts is how many records each pool holds, in any phase (by pool name):
// what Records would count, without copying them.
func (x *Index) Counts() map[string]int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	out := map[string]int{}
	for _, r := range x.records {
		out[r.Pool]++
	}
	return out
}

// HasPool reports whether any record points into the pool.
func (x *Index) HasPool(pool string) bool {
	x.mu.RLock()
	defer x.mu.RUnlock()
	for _, r := range x.records {
		if r.Pool == pool {
			return true
		}
	}
	return false
}

// Gen is the index's generation: it moves with every record written or
// dropped, and only then.
func (x *Index) Gen() uint64 {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.gen
}

// Each calls fn with every record the index holds, all of one generation,
// which it returns. The records are the index's own, lent for the call
// under its read lock: fn must neither change nor keep them (a value
// derived from one may share its read-only Context map), nor call the
// index.
func (x *Index) Each(fn func(r *state.Record)) uint64 {
	x.mu.RLock()
	defer x.mu.RUnlock()
	for _, r := range x.records {
		fn(r)
	}
	return x.gen
}
