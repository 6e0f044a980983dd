package disk

import (
	"fmt"
	"maps"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/localdisk-csi/localdisk/driver/mounter"
)

// identityTTL bounds how long a cached identity is trusted without being
// read again, even when nothing in its key moved (see Identities).
const identityTTL = time.Minute

// Identities is a per-disk cache of device identities (ReadIdentity) and
// of the identities of filesystems mounted at MOUNT disks' paths
// (MountedIdentity), so that the checks before every stage, publish, stats
// and health call do not each run blkid(8) on every disk of a pool.
//
// The rule: a device's cached identity is used while its key is unchanged
// and for at most identityTTL. The key is what changes when another disk
// is behind the device name, read on every call without device I/O: the
// device number, the inode and ctime of its node (a node made anew when a
// disk is attached), its diskseq (Linux 5.15: a new number for every disk
// or medium attached, and every loop device configured), and the facets
// sysfs shows (WWN, serial, loop backing file). Only the filesystem UUID
// is cached beyond them, and what changes it is either localdisk's own
// doing, which invalidates the entry (an erase's wipefs: Forget; a
// format: Refresh when its identity is recorded), or an operator's
// outside it (mkfs or wipefs by hand), which the TTL bounds. A caller that
// would report a disk missing or replaced from a cached identity reads it
// again first (Refresh): the cache may only delay finding a disk healthy
// after such an outside change, never report a healthy disk unhealthy.
//
// A mounted filesystem's identity is keyed by the mount (its mount ID,
// device number and source): another filesystem mounted at the disk's
// path is another mount.
type Identities struct {
	mu     sync.Mutex
	devs   map[uint64]devEntry // by device number
	mounts map[string]mountEntry
	epoch  uint64 // bumped by Forget: a read begun before it stores nothing
	// probe reads a filesystem UUID (FSUUIDOf; tests count its calls).
	probe func(dev string) (string, error)
	now   func() time.Time
}

type devKey struct {
	ino     uint64
	ctime   int64
	diskseq string
	facets  string
}

type devEntry struct {
	key devKey
	id  map[string]string
	at  time.Time
}

type mountEntry struct {
	id, major, minor int
	source           string
	fs               map[string]string
	at               time.Time
}

// NewIdentities makes an empty cache.
func NewIdentities() *Identities {
	return &Identities{devs: map[uint64]devEntry{}, mounts: map[string]mountEntry{}, probe: FSUUIDOf, now: time.Now}
}

// Get is ReadIdentity, from the cache when the entry of dev's disk is
// still valid (see Identities). The map returned is the caller's.
func (c *Identities) Get(dev string) (map[string]string, error) { return c.read(dev, false) }

// Refresh is ReadIdentity, always read anew (and cached).
func (c *Identities) Refresh(dev string) (map[string]string, error) { return c.read(dev, true) }

func (c *Identities) read(dev string, fresh bool) (map[string]string, error) {
	st, err := statBlock(dev)
	if err != nil {
		return nil, err
	}
	facets := sysfsFacets(st.Rdev)
	key := devKey{ino: st.Ino, ctime: st.Ctim.Nano(), facets: fmt.Sprint(facets)}
	if b, err := os.ReadFile(sysfsDir(st.Rdev) + "diskseq"); err == nil {
		key.diskseq = strings.TrimSpace(string(b))
	}
	c.mu.Lock()
	e, ok := c.devs[st.Rdev]
	epoch := c.epoch
	c.mu.Unlock()
	if ok && !fresh && e.key == key && c.now().Sub(e.at) < identityTTL {
		return maps.Clone(e.id), nil
	}
	id := facets
	if u, err := c.probe(dev); err == nil && u != "" {
		id[FSUUID] = u
	}
	if id, err = identityOf(dev, id); err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.epoch == epoch {
		c.devs[st.Rdev] = devEntry{key: key, id: maps.Clone(id), at: c.now()}
	}
	c.mu.Unlock()
	return id, nil
}

// Forget drops what is cached of dev's disk (after localdisk changed its
// signatures), and keeps a read under way from caching what it found.
func (c *Identities) Forget(dev string) {
	rdev, err := DeviceNumber(dev)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch++
	if err != nil {
		clear(c.devs)
		return
	}
	delete(c.devs, rdev)
}

// Mounted is MountedIdentity, from the cache while the same mount is at dir
// (see Identities). The map returned is the caller's.
func (c *Identities) Mounted(dir string) map[string]string {
	t, err := mounter.ReadTable()
	if err != nil {
		return nil
	}
	e := t.At(dir)
	if e == nil {
		return nil
	}
	c.mu.Lock()
	m, ok := c.mounts[dir]
	c.mu.Unlock()
	if ok && m.id == e.ID && m.major == e.Major && m.minor == e.Minor && m.source == e.Source && c.now().Sub(m.at) < identityTTL {
		return maps.Clone(m.fs)
	}
	fs := mountedIdentity(t, dir, c.probe)
	c.mu.Lock()
	c.mounts[dir] = mountEntry{id: e.ID, major: e.Major, minor: e.Minor, source: e.Source, fs: maps.Clone(fs), at: c.now()}
	c.mu.Unlock()
	return fs
}
