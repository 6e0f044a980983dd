package volume

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Usage is what a volume itself uses of its filesystem.
type Usage struct {
	// Bytes and Inodes used by the volume.
	Bytes, Inodes int64
	// FreeBytes and FreeInodes are what its filesystem still has free.
	FreeBytes, FreeInodes int64
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
func (m *Manager) Usage(v *Volume) (Usage, error) {
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
	free, freeInodes := int64(st.Bavail)*st.Bsize, int64(st.Ffree)
	if !v.Pool.Kind.Directory() {
		return Usage{Bytes: int64(st.Blocks-st.Bfree) * st.Bsize, Inodes: int64(st.Files - st.Ffree),
			FreeBytes: free, FreeInodes: freeInodes, Exact: true}, nil
	}
	if r := m.record(v.ID); r != nil && r.ProjectID != 0 && v.Pool.Enforcement() == enforceProject {
		u, err := m.projectUsage(dir, r.ProjectID)
		u.FreeBytes, u.FreeInodes = free, freeInodes
		return u, err
	}
	m.usage.mu.Lock()
	e, ok := m.usage.entries[v.ID]
	m.usage.mu.Unlock()
	if ok && time.Since(e.at) < usageTTL {
		e.u.FreeBytes, e.u.FreeInodes = free, freeInodes
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
	u.FreeBytes, u.FreeInodes = free, freeInodes
	m.usage.mu.Lock()
	if m.usage.entries == nil {
		m.usage.entries = map[string]usageEntry{}
	}
	m.usage.entries[v.ID] = usageEntry{at: time.Now(), u: u}
	m.usage.mu.Unlock()
	return u, nil
}

// forgetUsage drops a deleted volume's cached usage.
func (m *Manager) forgetUsage(id string) {
	m.usage.mu.Lock()
	delete(m.usage.entries, id)
	m.usage.mu.Unlock()
}

// walkUsage sums the allocated bytes and the inodes below dir inside root.
// Entries that vanish during the walk (a running container) are skipped.
func walkUsage(root *os.Root, dir string) (Usage, error) {
	u := Usage{Exact: true}
	seen := map[[2]uint64]bool{}
	n := 0
	err := fs.WalkDir(root.FS(), dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p != dir {
				return nil
			}
			return err
		}
		if n++; n > usageMaxEntries {
			u.Exact = false
			return fs.SkipAll
		}
		fi, err := d.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		if st.Nlink > 1 && !fi.IsDir() {
			k := [2]uint64{st.Dev, st.Ino}
			if seen[k] {
				return nil
			}
			seen[k] = true
		}
		u.Bytes += st.Blocks * 512
		u.Inodes++
		return nil
	})
	return u, err
}
