package mounts

import "errors"

// Sentinel errors, wrapped with their context ("%w: ..."). Errors of
// driver/volume (ErrNotFound, ErrBusy, ErrUnhealthy, ...) come through as
// they are. Anything else is a failure of the node itself (INTERNAL): such
// errors are formatted with %v, never %w, so that no error they wrap can
// make them look like one of the above.
var (
	// ErrBadPath: a staging or target path the kernel could never take (not
	// absolute, a NUL byte, too long), whose parent cannot be resolved, or
	// that lies inside what localdisk manages.
	ErrBadPath = errors.New("bad path")
	// ErrBadMountGroup: a volume_mount_group that is not a numeric group ID.
	ErrBadMountGroup = errors.New("bad volume mount group")
	// ErrNotServed: the volume cannot serve the capability (block access of
	// a directory, another fs_type than its disk's).
	ErrNotServed = errors.New("capability not served by the volume")
	// ErrNotStaged: a publish of a volume that is not staged at the staging
	// path.
	ErrNotStaged = errors.New("volume not staged")
	// ErrForeignMount: something else than the volume is mounted at the
	// path; it is neither mounted over nor unmounted.
	ErrForeignMount = errors.New("another mount at the path")
	// ErrReadOnlyMismatch: the volume is published at the target already,
	// with the other read-only flag.
	ErrReadOnlyMismatch = errors.New("published with the other read-only flag")
	// ErrMixedReadOnly: a raw block volume published read-only at one
	// target and writable at another (its device has one read-only flag).
	ErrMixedReadOnly = errors.New("raw device published both read-only and writable")
	// ErrSingleWriter: a SINGLE_NODE_SINGLE_WRITER volume published at
	// another target already.
	ErrSingleWriter = errors.New("single writer volume published elsewhere")
	// ErrNotADirectory and ErrNotAFile: a mount point exists and is not a
	// directory (not a regular file for a raw block target).
	ErrNotADirectory = errors.New("not a directory")
	ErrNotAFile      = errors.New("not a regular file")
	// ErrTargetHoldsData: an unmounted target is not what publish made (a
	// directory holding files, a file holding data): it is not removed.
	ErrTargetHoldsData = errors.New("target holds data")
	// ErrDeviceMount: a device disk's filesystem could not be made or
	// mounted.
	ErrDeviceMount = errors.New("device disk cannot be mounted")
	// ErrNotMounted: the volume is not mounted at the volume path of
	// NodeGetVolumeStats or NodeExpandVolume.
	ErrNotMounted = errors.New("volume not mounted at the path")
	// ErrUnresponsive: the filesystem behind a volume's mount stopped
	// answering (ENOTCONN, ESTALE, EIO, ...).
	ErrUnresponsive = errors.New("volume mount does not answer")
)
