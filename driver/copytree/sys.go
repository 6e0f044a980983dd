package copytree

import (
	"errors"
	"strconv"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Test switches for the fallbacks of older kernels (or seccomp filters that
// refuse the newer calls): without openat2(2) a child is opened with
// openat(2) and checked with fstat afterwards; without STATX_MNT_ID a mount
// point is recognised by a change of st_dev or STATX_ATTR_MOUNT_ROOT.
var (
	noOpenat2 atomic.Bool
	noMntID   atomic.Bool
)

// fileID identifies an inode.
type fileID struct{ dev, ino uint64 }

// info is what the copy needs of one inode's status, read with statx(2)
// without following a symlink.
type info struct {
	id        fileID
	mode      uint32 // type and permission bits (S_IFMT|07777)
	uid, gid  uint32
	nlink     uint32
	size      int64
	rdev      uint64
	atime     unix.Timespec
	mtime     unix.Timespec
	mntID     uint64
	hasMntID  bool
	mountRoot bool // STATX_ATTR_MOUNT_ROOT, where the kernel reports it
}

func (i *info) typ() uint32 { return i.mode & unix.S_IFMT }

const statxMask = unix.STATX_BASIC_STATS | unix.STATX_MNT_ID

// statAt reads the status of name in the directory dirfd, or of dirfd
// itself when name is "", never following a symlink.
func statAt(dirfd int, name string) (info, error) {
	flags := unix.AT_SYMLINK_NOFOLLOW | unix.AT_STATX_SYNC_AS_STAT
	if name == "" {
		flags |= unix.AT_EMPTY_PATH
	}
	var sx unix.Statx_t
	err := unix.Statx(dirfd, name, flags, statxMask, &sx)
	if errors.Is(err, unix.ENOSYS) {
		return fstatatInfo(dirfd, name, flags&^unix.AT_STATX_SYNC_AS_STAT)
	}
	if err != nil {
		return info{}, err
	}
	i := info{
		id:    fileID{unix.Mkdev(sx.Dev_major, sx.Dev_minor), sx.Ino},
		mode:  uint32(sx.Mode),
		uid:   sx.Uid,
		gid:   sx.Gid,
		nlink: sx.Nlink,
		size:  int64(sx.Size),
		rdev:  unix.Mkdev(sx.Rdev_major, sx.Rdev_minor),
		atime: unix.Timespec{Sec: sx.Atime.Sec, Nsec: int64(sx.Atime.Nsec)},
		mtime: unix.Timespec{Sec: sx.Mtime.Sec, Nsec: int64(sx.Mtime.Nsec)},
	}
	if sx.Mask&unix.STATX_MNT_ID != 0 && !noMntID.Load() {
		i.mntID, i.hasMntID = sx.Mnt_id, true
	}
	if sx.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0 {
		i.mountRoot = sx.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0
	}
	return i, nil
}

// fstatatInfo is statAt for kernels without statx(2): no mount ID.
func fstatatInfo(dirfd int, name string, flags int) (info, error) {
	var st unix.Stat_t
	if err := unix.Fstatat(dirfd, name, &st, flags); err != nil {
		return info{}, err
	}
	return info{
		id:    fileID{st.Dev, st.Ino},
		mode:  st.Mode,
		uid:   st.Uid,
		gid:   st.Gid,
		nlink: uint32(st.Nlink),
		size:  st.Size,
		rdev:  st.Rdev,
		atime: st.Atim,
		mtime: st.Mtim,
	}, nil
}

// crossesMount reports whether child, an entry of the directory parent,
// is the root of another mount: by its mount ID (STATX_MNT_ID) where the
// kernel gives it, else by a change of device; STATX_ATTR_MOUNT_ROOT in
// either case. A bind mount of the same filesystem has another mount ID
// and the mount-root attribute; a btrfs subvolume (another device, the
// same mount) is not a mount.
func crossesMount(parent, child *info) bool {
	if child.mountRoot {
		return true
	}
	if parent.hasMntID && child.hasMntID {
		return parent.mntID != child.mntID
	}
	return child.id.dev != parent.id.dev
}

// openIn opens name in the directory dirfd without following a symlink
// (O_NOFOLLOW, and with openat2(2) RESOLVE_NO_SYMLINKS) and, with
// openat2(2), without crossing a mount (RESOLVE_NO_XDEV, which fails with
// EXDEV). Callers check the identity of what they opened with statAt.
func openIn(dirfd int, name string, flags int) (int, error) {
	flags |= unix.O_NOFOLLOW | unix.O_CLOEXEC
	if !noOpenat2.Load() {
		how := unix.OpenHow{
			Flags: uint64(flags),
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS |
				unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
		}
		for {
			fd, err := unix.Openat2(dirfd, name, &how)
			if err == unix.EINTR || err == unix.EAGAIN {
				continue // EAGAIN: a concurrent rename; openat2 asks to retry
			}
			if err != unix.ENOSYS && err != unix.EPERM {
				if err != nil {
					return -1, err
				}
				return fd, nil
			}
			break // no openat2 (or a seccomp filter refusing it): openat
		}
	}
	for {
		fd, err := unix.Openat(dirfd, name, flags, 0)
		if err == nil {
			return fd, nil
		}
		if err != unix.EINTR {
			return -1, err
		}
	}
}

// openSame opens name in dirfd like openIn and checks that it is the inode
// want (the same inode on the same mount as was stat'ed before); an entry
// replaced in between fails with errChanged.
func openSame(dirfd int, name string, flags int, want *info) (int, info, error) {
	fd, err := openIn(dirfd, name, flags)
	if errors.Is(err, unix.EXDEV) || errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
		return -1, info{}, errChanged
	}
	if err != nil {
		return -1, info{}, err
	}
	got, err := statAt(fd, "")
	if err != nil {
		unix.Close(fd)
		return -1, info{}, err
	}
	if got.id != want.id || got.typ() != want.typ() ||
		(got.hasMntID && want.hasMntID && got.mntID != want.mntID) {
		unix.Close(fd)
		return -1, info{}, errChanged
	}
	return fd, got, nil
}

// procPath names the inode of fd (also an O_PATH descriptor of a symlink
// or a device node) for the calls that have no descriptor form.
func procPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// setTimes sets the access and modification times of fd's inode
// (utimensat(2) with a NULL path, which works on every kernel).
func setTimes(fd int, atime, mtime unix.Timespec) error {
	ts := [2]unix.Timespec{atime, mtime}
	for {
		_, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0,
			uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return e
		}
		return nil
	}
}

// closeFd closes fd when it is open (>= 0).
func closeFd(fd int) {
	if fd >= 0 {
		unix.Close(fd)
	}
}
