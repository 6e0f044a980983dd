package volume

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync/atomic"

	"github.com/sirupsen/logrus"

	"github.com/localdisk-csi/localdisk/driver/capacity"
	"github.com/localdisk-csi/localdisk/driver/disk"
	"github.com/localdisk-csi/localdisk/driver/keylock"
	"github.com/localdisk-csi/localdisk/driver/pool"
	"github.com/localdisk-csi/localdisk/driver/state"
	"github.com/localdisk-csi/localdisk/driver/volume/catalog"
	"github.com/localdisk-csi/localdisk/driver/volume/devfind"
	"github.com/localdisk-csi/localdisk/driver/volume/erasure"
	"github.com/localdisk-csi/localdisk/driver/volume/index"
	"github.com/localdisk-csi/localdisk/driver/volume/poolroot"
	"github.com/localdisk-csi/localdisk/driver/volume/stagemark"
	"github.com/localdisk-csi/localdisk/driver/volume/trash"
)

// Volume is what the CSI services see of a volume (catalog.Volume).
type Volume = catalog.Volume

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
	recs *index.Index
	// cat is what the CSI services see of the records and the pools
	// (driver/volume/catalog: Lookup, List and its cache).
	cat *catalog.Catalog
	// sweep sweeps the pools' trash and orphans (driver/volume/trash).
	sweep trash.Sweeper
	// copying names the copy that reads a volume ("": none; SetCopying).
	copying func(id string) string
}

// SetCopying makes Delete refuse volumes a copy reads (driver/snapshot).
func (m *Manager) SetCopying(f func(id string) string) { m.copying = f }

// New opens the state directory, loads every record, initialises the pools
// and converges what a crash left half-done. A record that cannot be read
// stops start-up with its name: the plugin never starts empty over data.
func New(stateDir string, cfg *pool.Config, log *logrus.Entry) (*Manager, error) {
	store, err := state.Open(stateDir)
	if err != nil {
		return nil, fmt.Errorf("state dir %s: %w", stateDir, err)
	}
	m := &Manager{log: log, store: store, pools: map[string]*Pool{}, stateDir: poolroot.CanonicalDir(stateDir),
		copying: func(string) string { return "" }}
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
	if m.marks, err = stagemark.Open(m.stateDir, m.stateRoot); err != nil {
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
		p, err := poolroot.New(spec)
		if err != nil {
			return nil, err
		}
		m.pools[p.Name] = p
		m.order = append(m.order, p)
		m.capPools = append(m.capPools, p.Pool)
	}
	m.cat = &catalog.Catalog{Recs: m.recs, Pools: m.pools, Order: m.order}
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

// volumeOf is what the CSI services see of a record (catalog.Catalog.Of).
func (m *Manager) volumeOf(r *state.Record) *Volume { return m.cat.Of(r) }

// Lookup finds a usable volume by ID: a ready record, or a free disk of a
// MOUNT pool that lists its unclaimed disks (a Mesos pre-existing disk).
func (m *Manager) Lookup(id string) (*Volume, error) { return m.cat.Lookup(id) }

// List returns every volume this plugin owns, sorted by ID: ready records,
// plus the unclaimed disks of pools that list them. The answer is cached
// until the index changes; callers must not modify it.
func (m *Manager) List() []*Volume { return m.cat.List() }

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
