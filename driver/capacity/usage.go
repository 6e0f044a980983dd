package capacity

import (
	"errors"
	"fmt"
	"os"
	"path"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/quota"
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

// UsageCache remembers recent walks, so stats polling stays cheap.
type UsageCache struct {
	mu      sync.Mutex
	entries map[string]usageEntry
}

type usageEntry struct {
	at time.Time
	u  Usage
}

// Measure measures what volume id of pool p uses, dir being its open
// directory (found healthy by the caller). A MOUNT volume is its whole
// disk (statfs); a ROOT/PATH volume with a project quota (project, not 0)
// is what its quota counts; any other ROOT/PATH volume's directory tree is
// walked (opened through open, the pool's checked data directory) without
// following symlinks, counting each hard-linked inode once, at most
// usageMaxEntries entries, and the result is cached for usageTTL. fresh
// walks even where the cache holds a recent answer (the health watch's
// measurement, which refreshes the cache).
func (c *UsageCache) Measure(p *Pool, id string, project uint32, dir *os.File, open func() (*os.Root, error), fresh bool) (Usage, error) {
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(dir.Fd()), &st); err != nil {
		return Usage{}, err
	}
	free, freeInodes, noInodes := int64(st.Bavail)*st.Bsize, int64(st.Ffree), st.Files == 0
	if !p.Kind.Directory() {
		return Usage{Bytes: int64(st.Blocks-st.Bfree) * st.Bsize, Inodes: int64(st.Files - st.Ffree),
			FreeBytes: free, FreeInodes: freeInodes, NoInodes: noInodes, Exact: true}, nil
	}
	if project != 0 && p.Enforcement() == EnforceProject {
		u, err := projectUsage(dir, project)
		u.FreeBytes, u.FreeInodes = free, freeInodes
		return u, err
	}
	c.mu.Lock()
	e, ok := c.entries[id]
	c.mu.Unlock()
	if ok && !fresh && time.Since(e.at) < usageTTL {
		e.u.FreeBytes, e.u.FreeInodes, e.u.NoInodes = free, freeInodes, noInodes
		return e.u, nil
	}
	root, err := open()
	if err != nil {
		return Usage{}, err
	}
	defer root.Close()
	u, err := walkUsage(root, path.Join(layout.VolumesDir, id))
	if err != nil {
		return Usage{}, fmt.Errorf("measure volume %s: %w", id, err)
	}
	u.FreeBytes, u.FreeInodes, u.NoInodes = free, freeInodes, noInodes
	c.mu.Lock()
	if c.entries == nil {
		c.entries = map[string]usageEntry{}
	}
	c.entries[id] = usageEntry{at: time.Now(), u: u}
	c.mu.Unlock()
	return u, nil
}

// Cached is what the cache holds of volume id (any age), or nothing
// measured yet: usage without walking a tree.
func (c *UsageCache) Cached(id string) Usage {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.entries[id].u
}

// Forget drops a deleted volume's cached usage.
func (c *UsageCache) Forget(id string) {
	c.mu.Lock()
	delete(c.entries, id)
	c.mu.Unlock()
}

// projectUsage is a project-quota volume's own usage as the quota counts it.
func projectUsage(dir *os.File, id uint32) (Usage, error) {
	qfs, err := quota.NewFS(dir)
	if err != nil {
		return Usage{}, err
	}
	defer qfs.Close()
	u, err := qfs.Usage(id)
	if err != nil {
		return Usage{}, err
	}
	return Usage{Bytes: int64(u.Bytes), Inodes: int64(u.Inodes), InodeLimit: int64(u.Limits.Inodes), Exact: true}, nil
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
