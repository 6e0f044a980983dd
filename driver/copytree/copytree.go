package copytree

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// Method is how the data of regular files is copied.
type Method int

const (
	// Reflink shares the data of each file with its copy (FICLONE): only
	// metadata is written. A file that cannot be cloned fails the copy with
	// ErrNoReflink; it is never copied in full instead.
	Reflink Method = iota + 1
	// Full copies the data (copy_file_range(2), which a filesystem may
	// serve by sharing extents, else read and write), keeping holes.
	Full
)

func (m Method) String() string {
	switch m {
	case Reflink:
		return "reflink"
	case Full:
		return "full"
	}
	return fmt.Sprintf("Method(%d)", int(m))
}

// Stats of a finished copy.
type Stats struct {
	Files     int64 // regular files copied (each inode once)
	Dirs      int64 // directories created below dst (not dst, not mount points)
	Symlinks  int64
	Others    int64 // fifos, character and block devices, sockets
	HardLinks int64 // extra names given to an inode already copied (linkat)
	Bytes     int64 // sum of the sizes of the regular files copied (holes included)
	// SkippedMounts are the paths, relative to src, of the mount points
	// found inside src, each copied as an empty directory (or an empty
	// file for a file mount), in the order met.
	SkippedMounts []string
}

var (
	// ErrNoSpace wraps ENOSPC and EDQUOT: the copy does not fit the target
	// (its quota or its filesystem).
	ErrNoSpace = errors.New("no space left for the copy")
	// ErrNoReflink is Reflink asked of a filesystem that cannot clone
	// (FICLONE failed with EOPNOTSUPP, EXDEV or EINVAL).
	ErrNoReflink = errors.New("the filesystem cannot clone files (reflink)")

	// errChanged is an entry replaced (or a mount made on it) between its
	// stat and its open: the source changed under the copy.
	errChanged = errors.New("the entry changed during the copy")
)

// maxOpen bounds the directories below the root whose descriptors stay
// open (two each, source and copy) on the path being copied, anchors
// aside; a variable for the tests.
var maxOpen = 64

// Anchors are the directories at depths that are multiples of anchorEvery,
// up to maxAnchors of them, whose descriptors stay open while the copy is
// below them, so that reopening an evicted directory walks at most
// anchorEvery+maxOpen names from an open ancestor.
var (
	anchorEvery = 256
	maxAnchors  = 64
)

// testHookEntry, when set by a test, runs before each entry is copied;
// testHookStat between the stat of an entry and its copy.
var (
	testHookEntry func()
	testHookStat  func(rel string)
)

// Copy copies the tree of the directory src into the empty directory dst;
// both are open directories (O_DIRECTORY) of the caller, who keeps them.
// dst gets src's owner, mode, xattrs and times too (ACLs dst inherited
// from its parent are removed first); at the end the target filesystem is
// synced (syncfs).
//
// What it guarantees:
//   - It never follows a symlink: every entry is opened relative to its
//     parent's descriptor with O_NOFOLLOW (and openat2 RESOLVE_NO_SYMLINKS
//     where the kernel has it) and stat'ed without following; a symlink is
//     copied as a symlink with the same target text, whatever it points to.
//   - It never crosses a mount inside src (a different mount ID, device or
//     STATX_ATTR_MOUNT_ROOT, also a bind mount of the same filesystem): a
//     mount point is copied as an empty directory with mode 0755 (an empty
//     file with mode 0644 for a file mount), owned by the owner of the
//     directory holding it (and the times of the copy), and listed in
//     Stats.SkippedMounts. Nothing of the mounted filesystem (whose root's
//     owner and mode are the mount's, not the volume's), nor of what the
//     mount hides (which cannot be reached without crossing it), is
//     copied.
//   - It preserves the type, owner and group, mode (setuid, setgid and
//     sticky included), access and modification times, extended
//     attributes (user, trusted, security, POSIX ACLs), symlink targets,
//     device numbers and the hard links between entries of the tree; under
//     Full, holes stay holes.
//   - Its descriptors do not grow with the depth of the tree: two (source
//     and copy) for the root, for a window of the 64 deepest directories
//     of the path being copied and for up to 64 anchors (every 256th
//     level), a few more for the entry being copied; about 260 at most.
//     Its memory per directory is the directory's names.
//
// Reading a symlink moves the access time of the source symlink (Linux
// has no O_NOATIME for readlink); its copy gets the time from before.
// Files and directories are read with O_NOATIME, so their access times
// stay.
//
// ctx is checked between entries. An entry that disappears between the
// listing of its directory and its copy is left out; an entry replaced in
// between fails the copy. A file written during the copy is copied in some
// state of its own.
//
// On error dst is left partly filled: the caller removes it. Errors wrap
// ErrNoSpace when the target ran out of space or quota (ENOSPC, EDQUOT),
// ErrNoReflink when Reflink was asked of a filesystem that cannot clone,
// and ctx.Err() when ctx ended.
func Copy(ctx context.Context, src, dst *os.File, m Method) (Stats, error) {
	if m != Reflink && m != Full {
		return Stats{}, fmt.Errorf("copytree: unknown method %v", m)
	}
	c := &copier{ctx: ctx, method: m, links: map[fileID]linkRef{}, lo: 1}
	defer c.closeAll()
	err := c.run(int(src.Fd()), int(dst.Fd()))
	runtime.KeepAlive(src)
	runtime.KeepAlive(dst)
	if err != nil {
		return c.stats, err
	}
	return c.stats, nil
}

// frame is a directory being copied: its source and copy, their
// descriptors (-1 while evicted) and the names still to copy.
type frame struct {
	name   string // in the parent; "" for the root
	src    int
	dst    int
	st     info // the source directory, stat'ed before it was read
	dstID  fileID
	names  []string
	next   int
	anchor bool // kept open while the copy is below it
}

// linkRef is where the first copy of an inode with several links went:
// the names of its directories below dst and its own name.
type linkRef struct {
	dirs []string
	name string
}

type copier struct {
	ctx     context.Context
	method  Method
	stats   Stats
	stack   []*frame
	window  int // frames below the root, anchors aside, with open descriptors
	lo      int // the lowest index that may hold such a frame
	anchors int
	links   map[fileID]linkRef
	dstRoot fileID
	dirbuf  []byte
	iobuf   []byte
}

func (c *copier) run(srcFd, dstFd int) error {
	// Own descriptors (not dups, which would share the caller's offset).
	sfd, err := openIn(srcFd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOATIME)
	if errors.Is(err, unix.EPERM) {
		sfd, err = openIn(srcFd, ".", unix.O_RDONLY|unix.O_DIRECTORY)
	}
	if err != nil {
		return fmt.Errorf("copytree: opening the source: %w", err)
	}
	root := &frame{src: sfd, dst: -1}
	c.stack = append(c.stack, root)
	if root.dst, err = openIn(dstFd, ".", unix.O_RDONLY|unix.O_DIRECTORY); err != nil {
		return fmt.Errorf("copytree: opening the target: %w", err)
	}
	if root.st, err = statAt(root.src, ""); err != nil {
		return fmt.Errorf("copytree: stat of the source: %w", err)
	}
	dstSt, err := statAt(root.dst, "")
	if err != nil {
		return fmt.Errorf("copytree: stat of the target: %w", err)
	}
	root.dstID, c.dstRoot = dstSt.id, dstSt.id
	if root.st.id == c.dstRoot {
		return errors.New("copytree: the source and the target are the same directory")
	}
	if names, err := c.readNames(root.dst); err != nil {
		return fmt.Errorf("copytree: reading the target: %w", err)
	} else if len(names) > 0 {
		return fmt.Errorf("copytree: the target is not empty (%d entries)", len(names))
	}
	// dst may have inherited ACLs from its parent: its default ACL would
	// pass on to what the copy creates in it, and its access ACL is not
	// src's. Both go; src's, if any, come with the root's metadata.
	if err := dropACLs(root.dst); err != nil {
		return fmt.Errorf("copytree: the ACLs of the target: %w", err)
	}
	if root.names, err = c.readNames(root.src); err != nil {
		return fmt.Errorf("copytree: reading the source: %w", err)
	}
	for len(c.stack) > 0 {
		f := c.stack[len(c.stack)-1]
		if f.next < len(f.names) {
			if err := c.ctx.Err(); err != nil {
				return fmt.Errorf("copytree: %w", err)
			}
			if testHookEntry != nil {
				testHookEntry()
			}
			name := f.names[f.next]
			f.names[f.next] = "" // let the name go
			f.next++
			if err := c.entry(f, name); err != nil {
				return err
			}
			continue
		}
		if err := finishMeta(node{fd: f.src}, node{fd: f.dst}, f.dst, &f.st); err != nil {
			return wrapErr("setting the metadata of", c.rel(""), err)
		}
		if err := c.pop(); err != nil {
			return err
		}
	}
	if err := unix.Syncfs(dstFd); err != nil {
		return wrapErr("syncing the target", "", err)
	}
	return nil
}

// rel is the path, relative to src, of name in the directory on top of
// the stack (of that directory when name is "").
func (c *copier) rel(name string) string {
	parts := make([]string, 0, len(c.stack))
	for _, f := range c.stack[1:] {
		parts = append(parts, f.name)
	}
	if name != "" {
		parts = append(parts, name)
	}
	if len(parts) == 0 {
		return "."
	}
	return strings.Join(parts, "/")
}

// wrapErr makes the error of op on the entry rel, wrapping ErrNoSpace for
// ENOSPC and EDQUOT.
func wrapErr(op, rel string, err error) error {
	if rel != "" {
		op += " " + rel
	}
	if errors.Is(err, unix.ENOSPC) || errors.Is(err, unix.EDQUOT) {
		if !errors.Is(err, ErrNoSpace) {
			return fmt.Errorf("copytree: %s: %w: %w", op, ErrNoSpace, err)
		}
	}
	return fmt.Errorf("copytree: %s: %w", op, err)
}

// readNames reads the names of the directory fd (from its start), in
// batches of one buffer.
func (c *copier) readNames(fd int) ([]string, error) {
	if c.dirbuf == nil {
		c.dirbuf = make([]byte, 64<<10)
	}
	if _, err := unix.Seek(fd, 0, 0); err != nil {
		return nil, err
	}
	var names []string
	for {
		n, err := unix.Getdents(fd, c.dirbuf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = unix.ParseDirent(c.dirbuf[:n], -1, names)
	}
}

// closeAll closes the descriptors still open (after an error).
func (c *copier) closeAll() {
	for _, f := range c.stack {
		closeFd(f.src)
		closeFd(f.dst)
		f.src, f.dst = -1, -1
	}
	c.stack = nil
}
