package quota

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// fsxattr is struct fsxattr, read and written by FS_IOC_FSGETXATTR and
// FS_IOC_FSSETXATTR.
type fsxattr struct {
	XFlags     uint32
	ExtSize    uint32
	NExtents   uint32
	ProjID     uint32
	CowExtSize uint32
	_          [8]byte
}

const (
	fsXFlagProjInherit = 0x00000200 // FS_XFLAG_PROJINHERIT
)

var (
	fsIocFSGetXattr = ioc(iocRead, 'X', 31, unsafe.Sizeof(fsxattr{}))  // FS_IOC_FSGETXATTR
	fsIocFSSetXattr = ioc(iocWrite, 'X', 32, unsafe.Sizeof(fsxattr{})) // FS_IOC_FSSETXATTR
)

// Directions of an ioctl request (asm-generic/ioctl.h).
const (
	iocNone  = 0
	iocWrite = 1
	iocRead  = 2
)

// ioc is _IOC(dir, typ, nr, size).
func ioc(dir, typ, nr, size uintptr) uintptr {
	return dir<<30 | size<<16 | typ<<8 | nr
}

func ioctl(fd int, req uintptr, arg unsafe.Pointer) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg))
	if errno != 0 {
		return errno
	}
	return nil
}

// Project returns the project ID of the open file or directory f and
// whether it has the inherit flag (new entries made in it get its project
// ID).
func Project(f *os.File) (id uint32, inherit bool, err error) {
	var a fsxattr
	err = withFd(f, func(fd int) error { return ioctl(fd, fsIocFSGetXattr, unsafe.Pointer(&a)) })
	if err != nil {
		return 0, false, wrapAttr(err, "reading the project ID of %s", f.Name())
	}
	return a.ProjID, a.XFlags&fsXFlagProjInherit != 0, nil
}

// SetProject gives the open directory dir project ID id with the inherit
// flag, so that every file and directory made below it from now on is
// charged to project id. Entries that already exist below dir keep their
// project: call it on a new, empty directory. It is idempotent. ID 0 is
// refused. ext4 needs inodes of at least 256 bytes and
// the project feature; XFS needs projid32bit (the mkfs.xfs default) for an
// ID above 65535.
func SetProject(dir *os.File, id uint32) error {
	if id == 0 {
		return fmt.Errorf("%w: project ID 0", ErrInvalid)
	}
	return setProject(dir, id, true)
}

func setProject(dir *os.File, id uint32, inherit bool) error {
	return withFd(dir, func(fd int) error {
		var a fsxattr
		if err := ioctl(fd, fsIocFSGetXattr, unsafe.Pointer(&a)); err != nil {
			return wrapAttr(err, "reading the project ID of %s", dir.Name())
		}
		flags := a.XFlags &^ fsXFlagProjInherit
		if inherit {
			flags |= fsXFlagProjInherit
		}
		if a.ProjID == id && a.XFlags == flags {
			return nil
		}
		a.ProjID, a.XFlags = id, flags
		if err := ioctl(fd, fsIocFSSetXattr, unsafe.Pointer(&a)); err != nil {
			return wrapAttr(err, "setting project ID %d on %s", id, dir.Name())
		}
		return nil
	})
}

// wrapAttr adds context to an FS_IOC_FS[GS]ETXATTR error; a filesystem that
// has no project IDs (no such ioctl, or ext4 without the project feature)
// gives ErrNotSupported.
func wrapAttr(err error, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if notSupportedErrno(err) {
		return fmt.Errorf("%s: %w (%w)", msg, ErrNotSupported, err)
	}
	return fmt.Errorf("%s: %w", msg, err)
}
