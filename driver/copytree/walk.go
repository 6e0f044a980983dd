package copytree

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// The stack of directories being copied holds descriptors for the root,
// the anchors and a window of at most maxOpen other directories, the
// deepest ones: frames [1, lo) that are not anchors are closed. When the
// copy climbs back to a closed directory, that directory and the ones
// above it up to the window's size are reopened by name from the nearest
// open ancestor, each checked to be the directory stat'ed when the copy
// went down (source) or made (target).

// errVanished is an entry of the source removed since its directory was
// read: it is left out.
var errVanished = errors.New("the entry vanished")

// openSrc opens the source entry name of dirfd, which must still be the
// inode want, with O_NOATIME where allowed (root may; the copy then leaves
// the source's access times alone).
func openSrc(dirfd int, name string, flags int, want *info) (int, info, error) {
	if flags&unix.O_PATH == 0 {
		fd, st, err := openSame(dirfd, name, flags|unix.O_NOATIME, want)
		if !errors.Is(err, unix.EPERM) {
			return fd, st, vanished(err)
		}
	}
	fd, st, err := openSame(dirfd, name, flags, want)
	return fd, st, vanished(err)
}

func vanished(err error) error {
	if errors.Is(err, unix.ENOENT) {
		return errVanished
	}
	return err
}

// pushDir makes the copy of the directory name of p and goes down into it.
func (c *copier) pushDir(p *frame, name string, st *info) error {
	if st.id == c.dstRoot {
		return errors.New("the target is inside the source")
	}
	sfd, sst, err := openSrc(p.src, name, unix.O_RDONLY|unix.O_DIRECTORY, st)
	if err != nil {
		return err
	}
	f := &frame{name: name, src: sfd, dst: -1, st: sst}
	if err := c.makeDir(p, f); err != nil {
		closeFd(f.src)
		closeFd(f.dst)
		return err
	}
	d := len(c.stack)
	f.anchor = d%anchorEvery == 0 && c.anchors < maxAnchors
	c.stack = append(c.stack, f)
	c.stats.Dirs++
	if f.anchor {
		c.anchors++
	} else {
		c.window++
		c.evict()
	}
	return nil
}

// makeDir creates the copy of the directory f in p (mode 0700 until its
// metadata is copied, once its entries are) and reads the source's names.
func (c *copier) makeDir(p, f *frame) error {
	if err := unix.Mkdirat(p.dst, f.name, 0o700); err != nil {
		return fmt.Errorf("mkdir: %w", err)
	}
	var err error
	if f.dst, err = openIn(p.dst, f.name, unix.O_RDONLY|unix.O_DIRECTORY); err != nil {
		return fmt.Errorf("opening the copy: %w", err)
	}
	dst, err := statAt(f.dst, "")
	if err != nil {
		return fmt.Errorf("stat of the copy: %w", err)
	}
	f.dstID = dst.id
	if f.names, err = c.readNames(f.src); err != nil {
		return fmt.Errorf("reading the directory: %w", err)
	}
	return nil
}

// evict closes the shallowest open directories of the window until it
// holds maxOpen.
func (c *copier) evict() {
	for c.window > maxOpen && c.lo < len(c.stack)-1 {
		if f := c.stack[c.lo]; !f.anchor && f.src >= 0 {
			closeFd(f.src)
			closeFd(f.dst)
			f.src, f.dst = -1, -1
			c.window--
		}
		c.lo++
	}
}

// pop leaves the finished directory on top of the stack, reopening its
// parent if it was evicted.
func (c *copier) pop() error {
	t := len(c.stack) - 1
	f := c.stack[t]
	closeFd(f.src)
	closeFd(f.dst)
	f.src, f.dst = -1, -1
	c.stack[t] = nil
	c.stack = c.stack[:t]
	switch {
	case t == 0:
		return nil
	case f.anchor:
		c.anchors--
	default:
		c.window--
	}
	c.lo = max(1, min(c.lo, t))
	if c.stack[t-1].src < 0 {
		return c.reopen(t - 1)
	}
	return nil
}

// reopen opens the evicted directory t again, walking down by name from
// its nearest open ancestor; it keeps the last maxOpen of those it opens.
func (c *copier) reopen(t int) error {
	i := t - 1
	for c.stack[i].src < 0 {
		i--
	}
	keep := max(i+1, t-maxOpen+1)
	for j := i + 1; j <= t; j++ {
		p, f := c.stack[j-1], c.stack[j]
		sfd, _, err := openSame(p.src, f.name, unix.O_RDONLY|unix.O_DIRECTORY, &f.st)
		if err == nil {
			f.src = sfd
			if f.dst, err = openIn(p.dst, f.name, unix.O_RDONLY|unix.O_DIRECTORY); err == nil {
				var dst info
				if dst, err = statAt(f.dst, ""); err == nil && dst.id != f.dstID {
					err = errChanged
				}
			}
		}
		if err != nil {
			closeFd(f.src)
			closeFd(f.dst)
			f.src, f.dst = -1, -1
			c.stack = c.stack[:j] // for the path in the error; none below is open
			return wrapErr("reopening", c.rel(f.name), err)
		}
		c.window++
		if j-1 > i && j-1 < keep {
			closeFd(p.src)
			closeFd(p.dst)
			p.src, p.dst = -1, -1
			c.window--
		}
	}
	c.lo = keep
	return nil
}

// link gives the inode first copied at ref the name name in p (linkat),
// walking to ref's directory from the deepest open directory of the stack
// on its path.
func (c *copier) link(p *frame, name string, ref linkRef) error {
	j := 0
	for k := 1; k < len(c.stack) && k-1 < len(ref.dirs) && c.stack[k].name == ref.dirs[k-1]; k++ {
		if c.stack[k].dst >= 0 {
			j = k
		}
	}
	dir := c.stack[j].dst
	for _, d := range ref.dirs[j:] {
		fd, err := openIn(dir, d, unix.O_PATH|unix.O_DIRECTORY)
		if dir != c.stack[j].dst {
			closeFd(dir)
		}
		if err != nil {
			return fmt.Errorf("opening the directory of the first link: %w", err)
		}
		dir = fd
	}
	if dir != c.stack[j].dst {
		defer closeFd(dir)
	}
	if err := unix.Linkat(dir, ref.name, p.dst, name, 0); err != nil {
		return fmt.Errorf("link: %w", err)
	}
	c.stats.HardLinks++
	return nil
}

// linkRefFor is where the entry name of the directory on top of the
// stack is copied, for its other links.
func (c *copier) linkRefFor(name string) linkRef {
	dirs := make([]string, 0, len(c.stack)-1)
	for _, f := range c.stack[1:] {
		dirs = append(dirs, f.name)
	}
	return linkRef{dirs: dirs, name: name}
}
