package volume

import (
	"errors"
	"fmt"
	"os"
	"path"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// Usage is what a volume itself uses of its filesystem.
type Usage struct {
	// Bytes and Inodes used by the volume.
	Bytes, Inodes int64
	// FreeBytes and FreeInodes are what its filesystem still has free.
	FreeBytes, FreeInodes int64
	// InodeLimit is the volume's own inode limit (its project quota's), 0
	// when it has none.
	InodeLimit int64
	// NoInodes is set when the filesystem does not count inodes (btrfs
	// reports none in statfs): inode numbers mean nothing there.
	NoInodes bool
	// Exact is false when a measuring walk stopped at its bound (the counts
	// are then a lower bound).
	Exact bool
}

// Bounds of usage measurement by walking a directory volume.
const (
	usageTTL        = 30 * time.Second
	usageMaxEntries = 1 << 20
)

// usageCache remembers recent walks, so stats polling stays cheap.
type usageCache struct {
	mu      sync.Mutex
	entries map[string]usageEntry
}

type usageEntry struct {
	at time.Time
	u  Usage
}

// Usage measures what the volume uses. A MOUNT volume is its whole disk
// (statfs); a ROOT/PATH volume's directory tree is walked without following
// symlinks, counting each hard-linked inode once, at most usageMaxEntries
// entries, and the result is cached for usageTTL.
func (m *Manager) Usage(v *Volume) (Usage, error) { return m.measure(v, false) }

// measure is Usage; fresh walks even where the cache holds a recent answer
// (the health watch's measurement, which refreshes the cache).
func (m *Manager) measure(v *Volume, fresh bool) (Usage, error) {
	if v.Device() { // its filesystem is only mounted at the CO's paths
		_, err := m.DevicePath(v)
		return Usage{}, err
	}
	dir, err := m.OpenDir(v)
	if err != nil {
		return Usage{}, err
	}
	defer dir.Close()
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(dir.Fd()), &st); err != nil {
		return Usage{}, err
	}
	free, freeInodes, noInodes := int64(st.Bavail)*st.Bsize, int64(st.Ffree), st.Files == 0
	if !v.Pool.Kind.Directory() {
		return Usage{Bytes: int64(st.Blocks-st.Bfree) * st.Bsize, Inodes: int64(st.Files - st.Ffree),
			FreeBytes: free, FreeInodes: freeInodes, NoInodes: noInodes, Exact: true}, nil
	}
	if r := m.record(v.ID); r != nil && r.ProjectID != 0 && v.Pool.Enforcement() == enforceProject {
		u, err := m.projectUsage(dir, r.ProjectID)
		u.FreeBytes, u.FreeInodes = free, freeInodes
		return u, err
	}
	m.usage.mu.Lock()
	e, ok := m.usage.entries[v.ID]
	m.usage.mu.Unlock()
	if ok && !fresh && time.Since(e.at) < usageTTL {
		e.u.FreeBytes, e.u.FreeInodes, e.u.NoInodes = free, freeInodes, noInodes
		return e.u, nil
	}
	root, err := v.Pool.open()
	if err != nil {
		return Usage{}, err
	}
	defer root.Close()
	u, err := walkUsage(root, path.Join(volumesDir, v.ID))
	if err != nil {
		return Usage{}, fmt.Errorf("measure volume %s: %w", v.ID, err)
	}
	u.FreeBytes, u.FreeInodes, u.NoInodes = free, freeInodes, noInodes
	m.usage.mu.Lock()
	if m.usage.entries == nil {
		m.usage.entries = map[string]usageEntry{}
	}
	m.usage.entries[v.ID] = usageEntry{at: time.Now(), u: u}
	m.usage.mu.Unlock()
	return u, nil
}

// cachedUsage is Usage without walking a tree: a directory volume whose
// pool does not enforce capacity reports what the cache holds (any age),
// or nothing measured yet. The pool and the directory are still checked.
func (m *Manager) cachedUsage(v *Volume) (Usage, error) {
	if v.Device() || !v.Pool.Kind.Directory() || v.Pool.Enforcement() != "" {
		return m.Usage(v) // no walk: a device, a disk's statfs, a quota's counts
	}
	dir, err := m.OpenDir(v)
	if err != nil {
		return Usage{}, err
	}
	dir.Close()
	m.usage.mu.Lock()
	e := m.usage.entries[v.ID]
	m.usage.mu.Unlock()
	return e.u, nil
}

// forgetUsage drops a deleted volume's cached usage.
func (m *Manager) forgetUsage(id string) {
	m.usage.mu.Lock()
	delete(m.usage.entries, id)
	m.usage.mu.Unlock()
}

// walkUsage sums the allocated bytes and the inodes below dir inside root,
// never following a symlink: each directory is opened relative to its
// parent's descriptor (O_NOFOLLOW), so the cost is linear in the entries even
// for deep trees, and a directory swapped for a symlink mid-walk is not
// entered. Hard-linked inodes count once; entries that vanish during the
// walk (a running container) are skipped; it stops at usageMaxEntries
// entries or usageMaxDepth levels (Exact is then false).
func walkUsage(root *os.Root, dir string) (Usage, error) {
	top, err := root.Open(dir)
	if err != nil {
		return Usage{}, err
	}
	w := &usageWalk{u: Usage{Exact: true}, seen: map[[2]uint64]bool{}}
	var st unix.Stat_t
	if err := unix.Fstat(int(top.Fd()), &st); err != nil {
		top.Close()
		return Usage{}, err
	}
	w.count(st)
	err = w.walk(top, 0)
	return w.u, err
}

const usageMaxDepth = 1024

type usageWalk struct {
	u    Usage
	n    int
	seen map[[2]uint64]bool
}

func (w *usageWalk) count(st unix.Stat_t) {
	if st.Nlink > 1 && st.Mode&unix.S_IFMT != unix.S_IFDIR {
		k := [2]uint64{st.Dev, st.Ino}
		if w.seen[k] {
			return
		}
		w.seen[k] = true
	}
	w.u.Bytes += st.Blocks * 512
	w.u.Inodes++
}

// walk counts the entries of the open directory d (which it closes).
func (w *usageWalk) walk(d *os.File, depth int) error {
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return err
	}
	fd := int(d.Fd())
	for _, name := range names {
		if w.n++; w.n > usageMaxEntries {
			w.u.Exact = false
			return nil
		}
		var st unix.Stat_t
		if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			return err
		}
		w.count(st)
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			continue
		}
		if depth+1 >= usageMaxDepth {
			w.u.Exact = false
			continue
		}
		cfd, err := unix.Openat(fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
			continue // gone or swapped for a symlink meanwhile
		}
		if err != nil {
			return err
		}
		if err := w.walk(os.NewFile(uintptr(cfd), name), depth+1); err != nil {
			return err
		}
	}
	return nil
}
