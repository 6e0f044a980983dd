package volume

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/sirupsen/logrus"

	"github.com/localdisk-csi/localdisk/driver/capacity"
	"github.com/localdisk-csi/localdisk/driver/disk"
	"github.com/localdisk-csi/localdisk/driver/keylock"
	"github.com/localdisk-csi/localdisk/driver/pool"
	"github.com/localdisk-csi/localdisk/driver/state"
	"github.com/localdisk-csi/localdisk/driver/volume/devfind"
	"github.com/localdisk-csi/localdisk/driver/volume/erasure"
	"github.com/localdisk-csi/localdisk/driver/volume/index"
	"github.com/localdisk-csi/localdisk/driver/volume/poolroot"
	"github.com/localdisk-csi/localdisk/driver/volume/stagemark"
	"github.com/localdisk-csi/localdisk/driver/volume/trash"
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
func (v *Volume) Path() string { return v.Pool.VolumePath(v.ID) }

// Manager owns the pools, the records and the locks.
type Manager struct {
	log       *logrus.Entry
	measuring atomic.Bool // MeasureUse is running
	stateDir  string      // canonical
	store     *state.Store
	stateRoot *os.Root
	marks     stagemark.Marks // the staging marks in the state dir
	pools     map[string]*Pool
	order     []*Pool          // configuration order
	capPools  []*capacity.Pool // their capacity sides, in that order

	// Locks are the per-key locks of operations (see Lock and the key
	// classes below). No lock here is held across another RPC's wait.
	Locks keylock.Locks

	usage  capacity.UsageCache
	quotas capacity.Quotas
	// ids caches the identities of the disks (see disk.Identities); devs
	// finds the disks of MOUNT volumes by identity with it.
	ids  *disk.Identities
	devs devfind.Finder
	// erasing erases the disks of deleted MOUNT volumes in the background
	// (driver/volume/erasure; its Run is replaced by tests).
	erasing *erasure.Erasures

	// recs is the in-memory index of the records (see driver/volume/index:
	// it stores and hands out copies, and writes through store).
	recs   *index.Index
	listed listCache
	// sweep sweeps the pools' trash and orphans (driver/volume/trash).
	sweep trash.Sweeper
}

// listCache keeps the last List answer until what it lists changes: the
// index (index.Index.Gen) or the free disks of a pool that lists them
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
	m := &Manager{log: log, store: store, pools: map[string]*Pool{}, stateDir: poolroot.CanonicalDir(stateDir)}
	m.recs = index.New(store, func(name string) map[string]string {
		if p := m.pools[name]; p != nil {
			return p.VolumeContext()
		}
		return nil
	})
	m.ids = disk.NewIdentities()
	m.devs = devfind.Finder{Recs: m.recs, IDs: m.ids}
	m.erasing = &erasure.Erasures{Log: log, Recs: m.recs, Devs: m.devs, IDs: m.ids,
		Eraser: disk.NewEraser(log, errClosing), Wipe: m.finishDelete}
	m.erasing.Run = m.erasing.Erase
	m.sweep = trash.Sweeper{Log: log, With: m.withID, Known: func(id string) bool { return m.recs.Record(id) != nil }}
	if m.stateRoot, err = os.OpenRoot(stateDir); err != nil {
		return nil, err
	}
	m.marks = stagemark.Marks{Dir: m.stateDir, Root: m.stateRoot}
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
		p, err := poolroot.New(spec)
		if err != nil {
			return nil, err
		}
		m.pools[p.Name] = p
		m.order = append(m.order, p)
		m.capPools = append(m.capPools, p.Pool)
	}
	for _, r := range recs {
		m.recs.Add(r) // after the pools: a record shares its pool's context map
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
	m.erasing.Eraser.Close()
	m.stateRoot.Close()
	return m.store.Close()
}

// Pools lists the pools in configuration order.
func (m *Manager) Pools() []*Pool { return m.order }

// NameTaken reports whether a volume of that name exists (in any phase).
func (m *Manager) NameTaken(name string) bool { return m.recs.ByName(name) != nil }

// volumeOf is what the CSI services see of a record: a new Volume, whose
// Context map is shared with the record and read-only.
func (m *Manager) volumeOf(r *state.Record) *Volume {
	return &Volume{ID: r.ID, Name: r.Name, Pool: m.pools[r.Pool], Capacity: r.Capacity, Context: r.Context, Claimed: true, Block: r.Block}
}

// Lookup finds a usable volume by ID: a ready record, or a free disk of a
// MOUNT pool that lists its unclaimed disks (a Mesos pre-existing disk).
func (m *Manager) Lookup(id string) (*Volume, error) {
	if r := m.recs.Record(id); r != nil {
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
	if key.gen = m.recs.Gen(); m.listed.vols != nil && m.listed.key == key {
		return m.listed.vols
	}
	out := []*Volume{}
	key.gen = m.recs.Each(func(r *state.Record) {
		if r.Phase == state.Ready {
			out = append(out, m.volumeOf(r))
		}
	})
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
	usable := poolroot.DiskUsable
	if block {
		usable = poolroot.BlockUsable
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
func (m *Manager) Records() []state.Record { return m.recs.Records() }

// VolumeCounts is how many records each pool holds, in any phase (by pool
// name): what Records would count, without copying them.
func (m *Manager) VolumeCounts() map[string]int { return m.recs.Counts() }

// PoolUsage is the pool's accounting, counting only usable MOUNT disks
// free, and a ROOT/PATH pool's free room at most what its filesystem can
// still hold beyond its reserve: what GetCapacity offers.
func (m *Manager) PoolUsage(p *Pool) pool.Usage {
	u := p.Usage(poolroot.DiskUsable)
	if p.Kind.Directory() {
		u = capacity.RoomFor(p.Pool, m.capPools, u, map[uint64]int64{})
	}
	return u
}
