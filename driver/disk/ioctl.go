package disk

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// ioctlGetSize is BLKGETSIZE64.
func ioctlGetSize(fd int, size *uint64) error {
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.BLKGETSIZE64, uintptr(unsafe.Pointer(size)))
	if e != 0 {
		return e
	}
	return nil
}

// ioctlRange issues BLKDISCARD or BLKZEROOUT over [start, start+length).
func ioctlRange(fd int, req uint, start, length uint64) error {
	r := [2]uint64{start, length}
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), uintptr(req), uintptr(unsafe.Pointer(&r)))
	if e != 0 {
		return e
	}
	return nil
}
