package mounter

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// Interface is what the mounts of volumes ask of the kernel (package
// driver/mounts). Kernel is the real one; package fakemounter keeps an
// in-memory mount table for tests that run without root.
//
// Every method may be called concurrently: callers serialise the calls on
// one path with their own locks.
type Interface interface {
	// ReadTable is a snapshot of the mount table.
	ReadTable() (Table, error)
	// BindDir mounts a clone of the directory open as dir at target (which
	// must exist and is never followed if a symlink), read-only if ro.
	BindDir(dir *os.File, target string, ro bool) error
	// BindPath mounts a clone of the mount, directory or device node at src
	// onto target; a symlink at either end is never followed.
	BindPath(src, target string, ro bool) error
	// UnmountAll removes every mount stacked at path; nothing mounted there
	// is not an error (idempotent), a mount that stays is.
	UnmountAll(path string) error
	// FormatAndMount mounts a device's filesystem at target, making one of
	// fsType first only when the device is blank.
	FormatAndMount(dev, target, fsType string, mkfsOptions []string) error
	// SetDeviceReadOnly sets or clears a block device's read-only flag.
	SetDeviceReadOnly(dev string, ro bool) error

	// The fast paths: answers without reading the mount table. Each is
	// false when unsure, and the caller then reads the table.

	// NotMounted reports that nothing is mounted at path: it does not
	// exist, or it is not the root of a mount.
	NotMounted(path string) bool
	// MountOf reports that path is the root of a mount showing the
	// directory dir.
	MountOf(path, dir string) bool
	// SameFile reports that a and b (symlinks followed) are one file.
	SameFile(a, b string) bool
}

// Kernel is the real Interface: binds with the new mount API or mount(2),
// as Detect decided for the process (see bind.go and legacy.go), and
// statx(2) for the fast paths.
type Kernel struct{}

var _ Interface = Kernel{}

// New is the real mounter.
func New() Kernel { return Kernel{} }

// ReadTable reads /proc/self/mountinfo.
func (Kernel) ReadTable() (Table, error) { return ReadTable() }

// BindDir is BindDir.
func (Kernel) BindDir(dir *os.File, target string, ro bool) error { return BindDir(dir, target, ro) }

// BindPath is BindPath.
func (Kernel) BindPath(src, target string, ro bool) error { return BindPath(src, target, ro) }

// UnmountAll is UnmountAll.
func (Kernel) UnmountAll(path string) error { return UnmountAll(path) }

// FormatAndMount is FormatAndMount.
func (Kernel) FormatAndMount(dev, target, fsType string, mkfsOptions []string) error {
	return FormatAndMount(dev, target, fsType, mkfsOptions)
}

// SetDeviceReadOnly sets or clears the read-only flag of a block device
// (BLKROSET).
func (Kernel) SetDeviceReadOnly(dev string, ro bool) error {
	f, err := os.OpenFile(dev, os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	flag := 0
	if ro {
		flag = 1
	}
	return unix.IoctlSetPointerInt(int(f.Fd()), unix.BLKROSET, flag)
}

// NotMounted answers from one statx(2): false when unsure (no statx, or no
// STATX_ATTR_MOUNT_ROOT in its mask).
func (Kernel) NotMounted(path string) bool {
	var stx unix.Statx_t
	err := unix.Statx(unix.AT_FDCWD, path, unix.AT_SYMLINK_NOFOLLOW, 0, &stx)
	if errors.Is(err, unix.ENOENT) {
		return true
	}
	return err == nil && stx.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0 && stx.Attributes&unix.STATX_ATTR_MOUNT_ROOT == 0
}

// MountOf answers from statx(2) and stat(2): false when unsure, statx(2)
// being missing (before Linux 4.11) or not reporting STATX_ATTR_MOUNT_ROOT
// (before 5.8).
func (k Kernel) MountOf(path, dir string) bool {
	var stx unix.Statx_t
	err := unix.Statx(unix.AT_FDCWD, path, unix.AT_SYMLINK_NOFOLLOW, 0, &stx)
	return err == nil && stx.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0 &&
		stx.Attributes&unix.STATX_ATTR_MOUNT_ROOT != 0 && k.SameFile(path, dir)
}

// SameFile compares device and inode numbers.
func (Kernel) SameFile(a, b string) bool {
	var sa, sb unix.Stat_t
	return unix.Stat(a, &sa) == nil && unix.Stat(b, &sb) == nil && sa.Dev == sb.Dev && sa.Ino == sb.Ino
}
