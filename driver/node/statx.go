package node

import (
	"errors"

	"golang.org/x/sys/unix"
)

// notMounted reports, from one statx, that nothing is mounted at p: it does
// not exist, or it is not the root of a mount. False when unsure (no statx,
// or no STATX_ATTR_MOUNT_ROOT in its mask: the caller reads the mount table).
func notMounted(p string) bool {
	var stx unix.Statx_t
	err := unix.Statx(unix.AT_FDCWD, p, unix.AT_SYMLINK_NOFOLLOW, 0, &stx)
	if errors.Is(err, unix.ENOENT) {
		return true
	}
	return err == nil && stx.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0 && stx.Attributes&unix.STATX_ATTR_MOUNT_ROOT == 0
}

// stagedAt reports whether staging is a mount of the directory dir (a
// directory volume staged there). False when unsure: statx(2) is missing
// (before Linux 4.11) or does not report STATX_ATTR_MOUNT_ROOT (before
// 5.8), and the caller then reads the mount table.
func stagedAt(staging, dir string) bool {
	var stx unix.Statx_t
	err := unix.Statx(unix.AT_FDCWD, staging, unix.AT_SYMLINK_NOFOLLOW, 0, &stx)
	return err == nil && stx.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0 &&
		stx.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0 && sameInode(staging, dir)
}

// sameInode reports whether a and b are one file (device and inode).
func sameInode(a, b string) bool {
	var sa, sb unix.Stat_t
	return unix.Stat(a, &sa) == nil && unix.Stat(b, &sb) == nil && sa.Dev == sb.Dev && sa.Ino == sb.Ino
}
