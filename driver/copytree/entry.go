package copytree

import (
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// entry copies the entry name of the directory p, the top of the stack.
func (c *copier) entry(p *frame, name string) error {
	st, err := statAt(p.src, name)
	if errors.Is(err, unix.ENOENT) {
		return nil // removed since its directory was read
	}
	if err != nil {
		return wrapErr("stat of", c.rel(name), err)
	}
	if testHookStat != nil {
		testHookStat(c.rel(name))
	}
	if crossesMount(&p.st, &st) {
		if err := c.mountPoint(p, name, &st); err != nil {
			return wrapErr("copying the mount point", c.rel(name), err)
		}
		return nil
	}
	if st.typ() == unix.S_IFDIR {
		err = c.pushDir(p, name, &st)
	} else if ref, ok := c.links[st.id]; ok && st.nlink > 1 {
		err = c.link(p, name, ref)
	} else {
		switch st.typ() {
		case unix.S_IFREG:
			err = c.copyFile(p, name, &st)
		case unix.S_IFLNK:
			err = c.copySymlink(p, name, &st)
		default:
			err = c.copySpecial(p, name, &st)
		}
		if err == nil && st.nlink > 1 {
			c.links[st.id] = c.linkRefFor(name)
		}
	}
	if errors.Is(err, errVanished) {
		return nil
	}
	if err != nil {
		return wrapErr("copying", c.rel(name), err)
	}
	return nil
}

// copyFile copies the regular file name of p.
func (c *copier) copyFile(p *frame, name string, st *info) error {
	// O_NONBLOCK|O_NOCTTY: should the entry have been replaced by a fifo
	// or a device, opening it neither blocks nor takes a terminal; openSrc
	// then refuses it (another inode).
	sfd, sst, err := openSrc(p.src, name, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY, st)
	if err != nil {
		return err
	}
	defer closeFd(sfd)
	dfd, err := unix.Openat(p.dst, name,
		unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("creating the copy: %w", err)
	}
	defer closeFd(dfd)
	if c.method == Reflink {
		err = cloneData(sfd, dfd)
	} else {
		err = copyData(sfd, dfd, sst.size, &c.iobuf)
	}
	if err != nil {
		return err
	}
	if err := finishMeta(node{fd: sfd}, node{fd: dfd}, dfd, &sst); err != nil {
		return err
	}
	c.stats.Files++
	c.stats.Bytes += sst.size
	return nil
}

// finishMeta gives the open regular file or directory dfd the owner,
// xattrs, mode and times of st: chown first (it clears setuid, setgid and
// file capabilities), then the xattrs (the ACLs agree with the mode), then
// the mode, the times last.
func finishMeta(src, dst node, dfd int, st *info) error {
	if err := unix.Fchown(dfd, int(st.uid), int(st.gid)); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	if err := copyXattrs(src, dst); err != nil {
		return err
	}
	if err := unix.Fchmod(dfd, st.mode&0o7777); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	if err := setTimes(dfd, st.atime, st.mtime); err != nil {
		return fmt.Errorf("setting times: %w", err)
	}
	return nil
}

// copySymlink copies the symlink name of p: the same target text, never
// resolved.
func (c *copier) copySymlink(p *frame, name string, st *info) error {
	sfd, sst, err := openSrc(p.src, name, unix.O_PATH, st)
	if err != nil {
		return err
	}
	defer closeFd(sfd)
	buf := make([]byte, max(sst.size+1, 256))
	for {
		n, err := unix.Readlinkat(sfd, "", buf)
		if err != nil {
			return fmt.Errorf("readlink: %w", err)
		}
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	if err := unix.Symlinkat(string(buf), p.dst, name); err != nil {
		return fmt.Errorf("symlink: %w", err)
	}
	if err := finishMetaAt(p.dst, name, sfd, &sst); err != nil {
		return err
	}
	c.stats.Symlinks++
	return nil
}

// copySpecial copies the fifo, device node or socket name of p (mknodat).
func (c *copier) copySpecial(p *frame, name string, st *info) error {
	sfd, sst, err := openSrc(p.src, name, unix.O_PATH, st)
	if err != nil {
		return err
	}
	defer closeFd(sfd)
	switch sst.typ() {
	case unix.S_IFIFO, unix.S_IFCHR, unix.S_IFBLK, unix.S_IFSOCK:
	default:
		return fmt.Errorf("unknown file type %#o", sst.typ())
	}
	if err := unix.Mknodat(p.dst, name, sst.typ()|0o600, int(sst.rdev)); err != nil {
		return fmt.Errorf("mknod: %w", err)
	}
	if err := finishMetaAt(p.dst, name, sfd, &sst); err != nil {
		return err
	}
	c.stats.Others++
	return nil
}

// finishMetaAt is finishMeta for the symlink or special file name just
// made in dir, whose source is the O_PATH descriptor sfd: by name, never
// following a symlink; symlinks have no mode of their own.
func finishMetaAt(dir int, name string, sfd int, st *info) error {
	if err := unix.Fchownat(dir, name, int(st.uid), int(st.gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	dfd, err := openIn(dir, name, unix.O_PATH)
	if err != nil {
		return fmt.Errorf("opening the copy: %w", err)
	}
	err = copyXattrs(node{fd: sfd, oPath: true}, node{fd: dfd, oPath: true})
	closeFd(dfd)
	if err != nil {
		return err
	}
	if st.typ() != unix.S_IFLNK {
		err := unix.Fchmodat(dir, name, st.mode&0o7777, unix.AT_SYMLINK_NOFOLLOW)
		if errors.Is(err, unix.EOPNOTSUPP) {
			// No fchmodat2(2): the entry is our own fresh node, no symlink.
			err = unix.Fchmodat(dir, name, st.mode&0o7777, 0)
		}
		if err != nil {
			return fmt.Errorf("chmod: %w", err)
		}
	}
	ts := []unix.Timespec{st.atime, st.mtime}
	if err := unix.UtimesNanoAt(dir, name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("setting times: %w", err)
	}
	return nil
}

// mountPoint copies the mount point name of p, whose mounted root is st,
// as an empty directory with mode 0755 (an empty file with mode 0644 for
// a file mount) owned by the owner of p: neither the mounted filesystem
// nor the directory it hides is read.
func (c *copier) mountPoint(p *frame, name string, st *info) error {
	mode := uint32(0o755)
	if st.typ() == unix.S_IFDIR {
		if err := unix.Mkdirat(p.dst, name, 0o700); err != nil {
			return fmt.Errorf("mkdir: %w", err)
		}
	} else {
		mode = 0o644
		fd, err := unix.Openat(p.dst, name,
			unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err != nil {
			return fmt.Errorf("creating: %w", err)
		}
		closeFd(fd)
	}
	if err := unix.Fchownat(p.dst, name, int(p.st.uid), int(p.st.gid), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown: %w", err)
	}
	if err := unix.Fchmodat(p.dst, name, mode, 0); err != nil {
		return fmt.Errorf("chmod: %w", err)
	}
	c.stats.SkippedMounts = append(c.stats.SkippedMounts, c.rel(name))
	return nil
}
