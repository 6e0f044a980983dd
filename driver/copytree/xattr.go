package copytree

import (
	"bytes"
	"errors"
	"fmt"

	"golang.org/x/sys/unix"
)

// node is an open inode whose extended attributes are read or written:
// through its descriptor (a regular file or a directory opened for I/O),
// or, for an O_PATH descriptor (a symlink, a fifo, a device node, a
// socket), through /proc/self/fd/N, whose magic link resolves to the inode
// itself and never to a symlink's target.
type node struct {
	fd    int
	oPath bool
}

func (n node) list(buf []byte) (int, error) {
	if n.oPath {
		return unix.Listxattr(procPath(n.fd), buf)
	}
	return unix.Flistxattr(n.fd, buf)
}

func (n node) get(name string, buf []byte) (int, error) {
	if n.oPath {
		return unix.Getxattr(procPath(n.fd), name, buf)
	}
	return unix.Fgetxattr(n.fd, name, buf)
}

func (n node) set(name string, val []byte) error {
	if n.oPath {
		return unix.Setxattr(procPath(n.fd), name, val, 0)
	}
	return unix.Fsetxattr(n.fd, name, val, 0)
}

// grow calls f with a buffer large enough for its answer: it asks for the
// size first (a zero-length buffer) and retries while the value grows
// between the calls (ERANGE).
func grow(f func([]byte) (int, error)) ([]byte, error) {
	for range 8 {
		n, err := f(nil)
		if err != nil {
			return nil, err
		}
		if n == 0 {
			return nil, nil
		}
		buf := make([]byte, n+64)
		n, err = f(buf)
		if errors.Is(err, unix.ERANGE) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
	return nil, unix.ERANGE
}

// copyXattrs copies every extended attribute of src to dst: user.*,
// trusted.*, security.* and the POSIX ACLs (system.posix_acl_access and
// system.posix_acl_default), as root reads them. A source filesystem without
// xattr support has none; a target that refuses one the source has
// (EOPNOTSUPP, or any other error) fails the copy.
func copyXattrs(src, dst node) error {
	list, err := grow(src.list)
	if errors.Is(err, unix.EOPNOTSUPP) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("listing xattrs: %w", err)
	}
	for _, name := range bytes.Split(list, []byte{0}) {
		if len(name) == 0 {
			continue
		}
		n := string(name)
		val, err := grow(func(b []byte) (int, error) { return src.get(n, b) })
		if errors.Is(err, unix.ENODATA) {
			continue // removed since the listing
		}
		if err != nil {
			return fmt.Errorf("reading xattr %s: %w", n, err)
		}
		if val == nil {
			val = []byte{}
		}
		if err := dst.set(n, val); err != nil {
			return fmt.Errorf("setting xattr %s: %w", n, err)
		}
	}
	return nil
}

// dropACLs removes the POSIX ACLs of the directory fd.
func dropACLs(fd int) error {
	for _, name := range []string{"system.posix_acl_default", "system.posix_acl_access"} {
		err := unix.Fremovexattr(fd, name)
		if err != nil && !errors.Is(err, unix.ENODATA) && !errors.Is(err, unix.EOPNOTSUPP) {
			return fmt.Errorf("removing %s: %w", name, err)
		}
	}
	return nil
}
