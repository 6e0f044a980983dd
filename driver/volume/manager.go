package volume

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/sirupsen/logrus"

	"github.com/localdisk-csi/localdisk/driver/capacity"
	"github.com/localdisk-csi/localdisk/driver/disk"
	"github.com/localdisk-csi/localdisk/driver/keylock"
	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/pool"
	"github.com/localdisk-csi/localdisk/driver/state"
)

// Volume is what the CSI services see of a volume.
type Volume struct {
	ID       string
	Name     string // empty for an unclaimed MOUNT disk
	Pool     *Pool
	Capacity int64
	Context  map[string]string
	// Claimed is false for a MOUNT disk listed as a pre-existing disk.
	Claimed bool
	// Block is set for a raw block volume.
	Block bool
}

// Device reports whether the volume is a device disk (formatted and mounted
// by localdisk, or used raw).
func (v *Volume) Device() bool {
	d := v.Pool.Disk(v.ID)
	return d != nil && d.IsDevice()
}

// FSType is the filesystem type a volume is served with: a device disk's
// (the one localdisk formats it with), or a directory volume's pool's
// filesystem; "" for a mounted MOUNT disk (any fs_type is taken as given).
func (v *Volume) FSType() string {
	if v.Pool.Kind.Directory() {
		return v.Pool.FSType()
	}
	if d := v.Pool.Disk(v.ID); d != nil && d.IsDevice() {
		return d.FSType
	}
	return ""
}

// Path is the canonical path of the volume's directory (for comparisons
// with the mount table).
func (v *Volume) Path() string { return v.Pool.volumePath(v.ID) }

// Manager owns the pools, the records and the locks.
type Manager struct {
	log       *logrus.Entry
	measuring atomic.Bool // MeasureUse is running
	stateDir  string      // canonical
	store     *state.Store
	stateRoot *os.Root
	pools     map[string]*Pool
	order     []*Pool          // configuration order
	capPools  []*capacity.Pool // their capacity sides, in that order

	// Locks are the per-key locks of operations (see Lock and the key
	// classes below). No lock here is held across another RPC's wait.
	Locks keylock.Locks

	usage  capacity.UsageCache
	quotas capacity.Quotas
	// ids caches the identities of the disks (see disk.Identities).
	ids *disk.Identities
	// erases owns the background erases; eraseRun is the erase itself
	// (erase; tests replace it).
	erases   *disk.Eraser
	eraseRun func(ctx context.Context, p *Pool, r *state.Record) error

	// The in-memory index of the records. It owns the values it holds:
	// index stores a copy of what it is given, and every read (record,
	// Records, mountRecords, List) hands out a copy, so that no record a
	// caller holds is ever the one the index holds. A stored value is never
	// changed: a change is a new value, written durably (put, drop) and
	// then indexed in place of the old one. mu guards the maps and gen.
	mu      sync.RWMutex
	records map[string]*state.Record // by ID
	names   map[string]string        // name -> ID
	disks   map[string]string        // pool/disk ID -> ID of the MOUNT record holding it
	gen     uint64                   // bumped by every index change, and only then
	listed  listCache
}

// listCache keeps the last List answer until what it lists changes: the
// index (Manager.gen) or the free disks of a pool that lists them
// (pool.Pool.Gen: claims, disks measured late).
type listCache struct {
	mu   sync.Mutex
	key  listKey
	vols []*Volume
}

type listKey struct{ gen, pools uint64 }

// New opens the state directory, loads every record, initialises the pools
// and converges what a crash left half-done. A record that cannot be read
// stops start-up with its name: the plugin never starts empty over data.
func New(stateDir string, cfg *pool.Config, log *logrus.Entry) (*Manager, error) {
	store, err := state.Open(stateDir)
	if err != nil {
		return nil, fmt.Errorf("state dir %s: %w", stateDir, err)
	}
	m := &Manager{log: log, store: store, pools: map[string]*Pool{}, stateDir: canonicalDir(stateDir),
		records: map[string]*state.Record{}, names: map[string]string{}, disks: map[string]string{}}
	m.ids, m.erases, m.eraseRun = disk.NewIdentities(), disk.NewEraser(log, errClosing), m.erase
	if m.stateRoot, err = os.OpenRoot(stateDir); err != nil {
		return nil, err
	}
	if err := m.stateRoot.Mkdir(poolsDir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	recs, bad, err := store.Load()
	if err != nil {
		return nil, fmt.Errorf("load records: %w", err)
	}
	if len(bad) > 0 {
		return nil, fmt.Errorf("refusing to start over unreadable state: %w", errors.Join(toErrs(bad)...))
	}
	for _, spec := range cfg.Pools {
		p, err := newPool(spec)
		if err != nil {
			return nil, err
		}
		m.pools[p.Name] = p
		m.order = append(m.order, p)
		m.capPools = append(m.capPools, p.Pool)
	}
	for _, r := range recs {
		m.index(r) // after the pools: a record shares its pool's context map
	}
	m.CheckHealth()
	m.converge(recs)
	return m, nil
}

func toErrs(bad []*state.LoadError) []error {
	out := make([]error, len(bad))
	for i, b := range bad {
		out[i] = b
	}
	return out
}

// Close stops the background erases and waits for them (each resumes at
// the next start, from its record), then releases the state directory.
func (m *Manager) Close() error {
	m.erases.Close()
	m.stateRoot.Close()
	return m.store.Close()
}

// Pools lists the pools in configuration order.
func (m *Manager) Pools() []*Pool { return m.order }

// index stores a copy of r in the in-memory index, in place of the record
// of its ID; r stays the caller's.
func (m *Manager) index(r *state.Record) {
	r = r.Clone()
	r.Version = state.Version // as Store.Put wrote it
	if p := m.pools[r.Pool]; p != nil && maps.Equal(r.Context, p.context) {
		r.Context = p.context // one shared map per pool, not one per volume
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.records[r.ID] = r
	if r.Name != "" {
		m.names[r.Name] = r.ID
	}
	if r.Kind == state.KindMount {
		m.disks[r.Pool+"/"+layout.DiskOf(r.ID)] = r.ID
	}
	m.gen++
}

func (m *Manager) unindex(r *state.Record) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.records, r.ID)
	if r.Name != "" && m.names[r.Name] == r.ID {
		delete(m.names, r.Name)
	}
	if k := r.Pool + "/" + layout.DiskOf(r.ID); m.disks[k] == r.ID {
		delete(m.disks, k)
	}
	m.gen++
}

// record returns a copy of the record of id, the caller's to change (and
// to put).
func (m *Manager) record(id string) *state.Record {
	m.mu.RLock()
	defer m.mu.RUnlock()
	if r := m.records[id]; r != nil {
		return r.Clone()
	}
	return nil
}

// NameTaken reports whether a volume of that name exists (in any phase).
func (m *Manager) NameTaken(name string) bool { return m.recordByName(name) != nil }

func (m *Manager) recordByName(name string) *state.Record {
	m.mu.RLock()
	id, ok := m.names[name]
	m.mu.RUnlock()
	if !ok {
		return nil
	}
	return m.record(id)
}

// put writes a record durably, then indexes a copy of it: r stays the
// caller's, who may change it and put it again.
func (m *Manager) put(r *state.Record) error {
	if err := m.store.Put(r); err != nil {
		return err
	}
	m.index(r)
	return nil
}

// drop removes a record durably, then from the index.
func (m *Manager) drop(r *state.Record) error {
	if err := m.store.Delete(r.ID); err != nil {
		return err
	}
	m.unindex(r)
	return nil
}

// volumeOf is what the CSI services see of a record: a new Volume, whose
// Context map is shared with the record and read-only.
func (m *Manager) volumeOf(r *state.Record) *Volume {
	return &Volume{ID: r.ID, Name: r.Name, Pool: m.pools[r.Pool], Capacity: r.Capacity, Context: r.Context, Claimed: true, Block: r.Block}
}

// Lookup finds a usable volume by ID: a ready record, or a free disk of a
// MOUNT pool that lists its unclaimed disks (a Mesos pre-existing disk).
func (m *Manager) Lookup(id string) (*Volume, error) {
	if r := m.record(id); r != nil {
		if r.Phase != state.Ready {
			return nil, fmt.Errorf("%w: volume %s is %s", ErrBusy, id, r.Phase)
		}
		if m.pools[r.Pool] == nil {
			return nil, fmt.Errorf("%w: volume %s: pool %q is no longer configured", ErrUnhealthy, id, r.Pool)
		}
		return m.volumeOf(r), nil
	}
	if v := m.unclaimedDisk(id); v != nil {
		return v, nil
	}
	return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
}

func (m *Manager) unclaimedDisk(id string) *Volume {
	for _, p := range m.order {
		if v := unclaimedIn(p, id); v != nil {
			return v
		}
	}
	return nil
}

// diskRecord returns a copy of the record holding a MOUNT pool's disk.
func (m *Manager) diskRecord(p *Pool, d *pool.Disk) *state.Record {
	m.mu.RLock()
	id, ok := m.disks[p.Name+"/"+d.ID]
	m.mu.RUnlock()
	if !ok {
		return nil
	}
	return m.record(id)
}

func unclaimedIn(p *Pool, id string) *Volume {
	if p.Kind != pool.Mount || !p.ListUnclaimed {
		return nil
	}
	d := p.Disk(id)
	if d == nil || d.ID != id || p.Claimed(id) { // an old claim's ID is not the free disk
		return nil
	}
	return &Volume{ID: d.ID, Pool: p, Capacity: d.Size(), Context: contextOf(p)}
}

// List returns every volume this plugin owns, sorted by ID: ready records,
// plus the unclaimed disks of pools that list them. The answer is cached
// until the index changes; callers must not modify it.
func (m *Manager) List() []*Volume {
	m.listed.mu.Lock()
	defer m.listed.mu.Unlock()
	var key listKey
	for _, p := range m.order { // read before what they count
		if p.ListUnclaimed {
			key.pools += p.Gen()
		}
	}
	m.mu.RLock()
	key.gen = m.gen
	if m.listed.vols != nil && m.listed.key == key {
		m.mu.RUnlock()
		return m.listed.vols
	}
	out := make([]*Volume, 0, len(m.records))
	for _, r := range m.records {
		if r.Phase == state.Ready {
			out = append(out, m.volumeOf(r))
		}
	}
	m.mu.RUnlock()
	for _, p := range m.order {
		for _, d := range p.Disks {
			if v := unclaimedIn(p, d.ID); v != nil {
				out = append(out, v)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	m.listed.key, m.listed.vols = key, out
	return out
}

// Capacity is what a CreateVolume selected by s (for a raw block volume if
// block) could still get: the sum of the free room of the healthy selected
// pools and the largest single volume.
// MOUNT pools that list their unclaimed disks count 0 (their disks are
// already offered as pre-existing volumes).
func (m *Manager) Capacity(s Selector, block bool) (available, maximum int64) {
	usable := diskUsable
	if block {
		usable = blockUsable
	}
	rooms := map[uint64]int64{}
	for _, p := range m.candidates(s) {
		if p.ListUnclaimed || !p.Healthy() || block && p.Kind.Directory() {
			continue
		}
		u := p.Usage(usable)
		if p.Kind.Directory() {
			u = capacity.RoomFor(p.Pool, m.capPools, u, rooms)
		}
		available += u.Free
		maximum = max(maximum, u.MaxVolume)
	}
	return available, maximum
}

// Lock takes all of an operation's keys at once, in the order of their
// classes (a volume name, then a volume ID, then a CO path), or fails with
// ErrBusy when ctx ends first. It returns the function that releases them.
func (m *Manager) Lock(ctx context.Context, keys ...keylock.Key) (func(), error) {
	h, err := m.lock(ctx, keys...)
	if err != nil {
		return nil, err
	}
	return h.Unlock, nil
}

// lock is Lock for an operation that takes keys of a higher class later,
// through what it holds (lockMore).
func (m *Manager) lock(ctx context.Context, keys ...keylock.Key) (*keylock.Held, error) {
	h, err := m.Locks.LockAll(ctx, keys...)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBusy, err)
	}
	return h, nil
}

// lockMore takes keys of a higher class than the operation holds in h (a
// lower one panics: see keylock), or fails with ErrBusy.
func lockMore(ctx context.Context, h *keylock.Held, keys ...keylock.Key) (func(), error) {
	unlock, err := h.Lock(ctx, keys...)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBusy, err)
	}
	return unlock, nil
}

// The classes of lock keys, in the order an operation takes them.
const (
	nameClass keylock.Class = iota + 1 // a CO's volume name: CreateVolume
	idClass                            // a volume ID
	pathClass                          // a CO path, staging or target
)

// IDKey, NameKey and PathKey are the lock keys of a volume, its name and a
// CO path (staging or target).
func IDKey(id string) keylock.Key     { return keylock.Key{Class: idClass, Name: id} }
func NameKey(name string) keylock.Key { return keylock.Key{Class: nameClass, Name: name} }
func PathKey(p string) keylock.Key    { return keylock.Key{Class: pathClass, Name: p} }

// Records returns copies of every record, in any phase (see Clone: the
// caller's to change).
func (m *Manager) Records() []state.Record {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := make([]state.Record, 0, len(m.records))
	for _, r := range m.records {
		out = append(out, *r.Clone())
	}
	return out
}

// VolumeCounts is how many records each pool holds, in any phase (by pool
// name): what Records would count, without copying them.
func (m *Manager) VolumeCounts() map[string]int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	out := map[string]int{}
	for _, r := range m.records {
		out[r.Pool]++
	}
	return out
}

// PoolUsage is the pool's accounting, counting only usable MOUNT disks
// free, and a ROOT/PATH pool's free room at most what its filesystem can
// still hold beyond its reserve: what GetCapacity offers.
func (m *Manager) PoolUsage(p *Pool) pool.Usage {
	u := p.Usage(diskUsable)
	if p.Kind.Directory() {
		u = capacity.RoomFor(p.Pool, m.capPools, u, map[uint64]int64{})
	}
	return u
}
