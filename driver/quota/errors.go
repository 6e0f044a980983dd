package quota

import (
	"errors"

	"golang.org/x/sys/unix"
)

// Sentinel errors. Errors returned by this package wrap one of these (test
// with errors.Is) or, for an unexpected failure of a system call, the
// unix.Errno itself.
var (
	// ErrNotSupported: the filesystem has no enforced project quota (wrong
	// filesystem type, mounted without prjquota, kernel without quota
	// support), or no qgroups for btrfs.
	ErrNotSupported = errors.New("project quota not supported on this filesystem")
	// ErrInvalid: an argument is out of range (project ID 0, a subvolume
	// name with a slash, a limit that does not fit the kernel's units).
	ErrInvalid = errors.New("invalid argument")
	// ErrExhausted: the Allocator's range has no free project ID left.
	ErrExhausted = errors.New("no free project ID in range")
	// ErrNotFound: the directory or subvolume does not exist.
	ErrNotFound = errors.New("not found")
)

// IsExceeded reports whether err is the kernel's "disk quota exceeded"
// (EDQUOT): what ext4 and btrfs return for a write past a limit. XFS
// reports a project quota hit as ENOSPC, which cannot be told from a full
// filesystem by the error alone (compare FS.Usage with the limit).
func IsExceeded(err error) bool {
	return errors.Is(err, unix.EDQUOT)
}

// notSupportedErrno reports whether errno means "no quota here" rather than
// a failure: the filesystem has no quotactl operations (ENOSYS), quota is
// not on for the type (ESRCH), or the operation is not implemented for
// this filesystem (EOPNOTSUPP, or ENOTTY from an ioctl it does not know).
func notSupportedErrno(err error) bool {
	return errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.ESRCH) ||
		errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.ENOTTY)
}
