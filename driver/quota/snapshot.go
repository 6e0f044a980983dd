package quota

import (
	"fmt"
	"os"
	"unsafe"
)

// btrfsSubvolNameMax is BTRFS_SUBVOL_NAME_MAX: the name field of struct
// btrfs_ioctl_vol_args_v2 holds 4039 bytes and a NUL.
const btrfsSubvolNameMax = 4039

// btrfsSubvolRdonly is BTRFS_SUBVOL_RDONLY: the snapshot is read-only.
const btrfsSubvolRdonly = 1 << 1

// btrfsVolArgsV2 is struct btrfs_ioctl_vol_args_v2 (4096 bytes): fd,
// transid, flags, a 32-byte union (qgroup inherit size and pointer) and
// the name.
type btrfsVolArgsV2 struct {
	Fd      int64
	TransID uint64
	Flags   uint64
	Unused  [4]uint64
	Name    [btrfsSubvolNameMax + 1]byte
}

var btrfsIocSnapCreateV2 = ioc(iocWrite, btrfsIoctlMagic, 23, unsafe.Sizeof(btrfsVolArgsV2{}))

// Snapshot makes a snapshot of the subvolume open as src, called name in
// the open directory parent (BTRFS_IOC_SNAP_CREATE_V2), read-only if
// readOnly. It is instant: the snapshot shares every extent with src. src
// must be the root of a subvolume (EINVAL otherwise) on the same
// filesystem as parent (EXDEV otherwise). An existing entry of that name
// gives an error wrapping os.ErrExist. DeleteSubvolume deletes a
// snapshot, read-only or not. With quotas enabled, the kernel
// gives the snapshot its own level-0 qgroup, whose referenced bytes are
// src's at once.
func Snapshot(src, parent *os.File, name string, readOnly bool) error {
	if _, err := volArgs(name); err != nil {
		return err
	}
	a := &btrfsVolArgsV2{}
	copy(a.Name[:], name)
	if readOnly {
		a.Flags = btrfsSubvolRdonly
	}
	err := withFd(src, func(fd int) error {
		a.Fd = int64(fd)
		return btrfsIoctl(parent, btrfsIocSnapCreateV2, unsafe.Pointer(a))
	})
	if err != nil {
		return fmt.Errorf("snapshot of %s as %q in %s: %w", src.Name(), name, parent.Name(), err)
	}
	return nil
}
