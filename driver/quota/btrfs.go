package quota

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The btrfs ioctl interface, from <linux/btrfs.h> and <linux/btrfs_tree.h>.
const (
	btrfsIoctlMagic         = 0x94
	btrfsPathNameMax        = 4087
	btrfsFirstFreeObjectID  = 256 // the inode number of a subvolume's root
	btrfsQuotaTreeObjectID  = 8
	btrfsQgroupInfoKey      = 242
	btrfsQgroupLimitKey     = 244
	btrfsQuotaCtlEnable     = 1
	btrfsQgroupLimitMaxRfer = 1 << 0
	btrfsLimitClear         = ^uint64(0) // "no limit" for a qgroup limit field
	btrfsSearchBufSize      = 4096 - 104
)

type btrfsVolArgs struct {
	Fd   int64
	Name [btrfsPathNameMax + 1]byte
}

type btrfsInoLookupArgs struct {
	TreeID   uint64
	ObjectID uint64
	Name     [4080]byte
}

type btrfsQuotaCtlArgs struct {
	Cmd    uint64
	Status uint64
}

type btrfsQgroupLimitArgs struct {
	QgroupID uint64
	Flags    uint64
	MaxRfer  uint64
	MaxExcl  uint64
	RsvRfer  uint64
	RsvExcl  uint64
}

type btrfsQgroupCreateArgs struct {
	Create   uint64
	QgroupID uint64
}

type btrfsSearchKey struct {
	TreeID, MinObjectID, MaxObjectID   uint64
	MinOffset, MaxOffset               uint64
	MinTransID, MaxTransID             uint64
	MinType, MaxType, NrItems, Unused  uint32
	Unused1, Unused2, Unused3, Unused4 uint64
}

type btrfsSearchArgs struct {
	Key btrfsSearchKey
	Buf [btrfsSearchBufSize]byte
}

// btrfsSearchHeader is struct btrfs_ioctl_search_header, which precedes
// each item in a tree search result.
type btrfsSearchHeader struct {
	TransID, ObjectID, Offset uint64
	Type, Len                 uint32
}

var (
	btrfsIocSync            = ioc(iocNone, btrfsIoctlMagic, 8, 0)
	btrfsIocSubvolCreate    = ioc(iocWrite, btrfsIoctlMagic, 14, unsafe.Sizeof(btrfsVolArgs{}))
	btrfsIocSnapDestroy     = ioc(iocWrite, btrfsIoctlMagic, 15, unsafe.Sizeof(btrfsVolArgs{}))
	btrfsIocTreeSearch      = ioc(iocRead|iocWrite, btrfsIoctlMagic, 17, unsafe.Sizeof(btrfsSearchArgs{}))
	btrfsIocInoLookup       = ioc(iocRead|iocWrite, btrfsIoctlMagic, 18, unsafe.Sizeof(btrfsInoLookupArgs{}))
	btrfsIocQuotaCtl        = ioc(iocRead|iocWrite, btrfsIoctlMagic, 40, unsafe.Sizeof(btrfsQuotaCtlArgs{}))
	btrfsIocQgroupCreate    = ioc(iocWrite, btrfsIoctlMagic, 42, unsafe.Sizeof(btrfsQgroupCreateArgs{}))
	btrfsIocQgroupLimit     = ioc(iocRead, btrfsIoctlMagic, 43, unsafe.Sizeof(btrfsQgroupLimitArgs{}))
	btrfsIocQuotaRescanWait = ioc(iocNone, btrfsIoctlMagic, 46, 0)
)

// btrfsIoctl runs one ioctl on f, which must be on btrfs.
func btrfsIoctl(f *os.File, req uintptr, arg unsafe.Pointer) error {
	return withFd(f, func(fd int) error {
		var st unix.Statfs_t
		if err := unix.Fstatfs(fd, &st); err != nil {
			return err
		}
		if kindOfMagic(uint32(st.Type)) != KindBtrfs {
			return fmt.Errorf("%w: %s is not on btrfs", ErrNotSupported, f.Name())
		}
		return ioctl(fd, req, arg)
	})
}

// volArgs checks a subvolume name (one path component) and packs it.
func volArgs(name string) (*btrfsVolArgs, error) {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") || len(name) > 255 {
		return nil, fmt.Errorf("%w: subvolume name %q", ErrInvalid, name)
	}
	a := &btrfsVolArgs{}
	copy(a.Name[:], name)
	return a, nil
}

// CreateSubvolume makes a subvolume called name in the open directory
// parent (BTRFS_IOC_SUBVOL_CREATE). name is one path component. An
// existing entry of that name gives an error wrapping os.ErrExist. With
// quotas enabled, the kernel gives the subvolume its own level-0 qgroup.
func CreateSubvolume(parent *os.File, name string) error {
	a, err := volArgs(name)
	if err != nil {
		return err
	}
	if err := btrfsIoctl(parent, btrfsIocSubvolCreate, unsafe.Pointer(a)); err != nil {
		return fmt.Errorf("creating subvolume %q in %s: %w", name, parent.Name(), err)
	}
	return nil
}

// DeleteSubvolume deletes the subvolume called name in the open directory
// parent, with everything in it (BTRFS_IOC_SNAP_DESTROY): the kernel frees
// its space in the background. A missing name gives ErrNotFound; an entry
// that is not a subvolume gives EINVAL. The subvolume's qgroup is then
// removed when the kernel allows it; a qgroup still being emptied stays
// (btrfs drops it with the subvolume's last extent, or it stays as an
// empty, stale qgroup that harms nothing).
func DeleteSubvolume(parent *os.File, name string) error {
	a, err := volArgs(name)
	if err != nil {
		return err
	}
	sub, err := openIn(parent, name)
	if err != nil {
		return err
	}
	id, err := SubvolumeID(sub)
	sub.Close()
	if err != nil {
		return err
	}
	if err := btrfsIoctl(parent, btrfsIocSnapDestroy, unsafe.Pointer(a)); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("subvolume %q in %s: %w", name, parent.Name(), ErrNotFound)
		}
		return fmt.Errorf("deleting subvolume %q in %s: %w", name, parent.Name(), err)
	}
	q := btrfsQgroupCreateArgs{Create: 0, QgroupID: id}
	_ = btrfsIoctl(parent, btrfsIocQgroupCreate, unsafe.Pointer(&q)) // best effort, see above
	return nil
}

// openIn opens the directory name in parent without following a symlink.
func openIn(parent *os.File, name string) (*os.File, error) {
	var f *os.File
	err := withFd(parent, func(pfd int) error {
		fd, err := unix.Openat(pfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		f = os.NewFile(uintptr(fd), parent.Name()+"/"+name)
		return nil
	})
	if errors.Is(err, unix.ENOENT) {
		return nil, fmt.Errorf("subvolume %q in %s: %w", name, parent.Name(), ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("opening %q in %s: %w", name, parent.Name(), err)
	}
	return f, nil
}

// SubvolumeID returns the ID of the subvolume that holds the open file or
// directory f (BTRFS_IOC_INO_LOOKUP), which is also the ID of its level-0
// qgroup. The top-level subvolume is 5.
func SubvolumeID(f *os.File) (uint64, error) {
	a := btrfsInoLookupArgs{ObjectID: btrfsFirstFreeObjectID}
	if err := btrfsIoctl(f, btrfsIocInoLookup, unsafe.Pointer(&a)); err != nil {
		return 0, fmt.Errorf("subvolume ID of %s: %w", f.Name(), err)
	}
	return a.TreeID, nil
}

// IsSubvolume reports whether the open directory f is the root of a
// subvolume (its inode number is 256 on btrfs).
func IsSubvolume(f *os.File) (bool, error) {
	if k, err := Detect(f); err != nil || k != KindBtrfs {
		return false, err
	}
	var st unix.Stat_t
	if err := withFd(f, func(fd int) error { return unix.Fstat(fd, &st) }); err != nil {
		return false, fmt.Errorf("stat %s: %w", f.Name(), err)
	}
	return st.Ino == btrfsFirstFreeObjectID && st.Mode&unix.S_IFMT == unix.S_IFDIR, nil
}

// EnableQuota turns qgroups on for the btrfs filesystem that holds f and
// waits for the rescan of existing data to finish, so that usage is right
// from the return on. It is idempotent.
func EnableQuota(f *os.File) error {
	if on, err := QuotaEnabled(f); err != nil || on {
		return err
	}
	a := btrfsQuotaCtlArgs{Cmd: btrfsQuotaCtlEnable}
	if err := btrfsIoctl(f, btrfsIocQuotaCtl, unsafe.Pointer(&a)); err != nil {
		return fmt.Errorf("enabling quotas on %s: %w", f.Name(), err)
	}
	if err := btrfsIoctl(f, btrfsIocQuotaRescanWait, nil); err != nil {
		return fmt.Errorf("waiting for the quota rescan of %s: %w", f.Name(), err)
	}
	return nil
}

// QuotaEnabled reports whether qgroups are on for the btrfs filesystem
// that holds f: whether it has a quota tree.
func QuotaEnabled(f *os.File) (bool, error) {
	_, err := searchQuotaTree(f, btrfsQgroupInfoKey, 0)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	return err == nil, err
}

// SetQgroupLimit sets the referenced-bytes limit of subvolume subvolID's
// qgroup to bytes, or removes it when bytes is 0 (BTRFS_IOC_QGROUP_LIMIT).
// f is any file or directory of the filesystem. A write that would take
// the subvolume past the limit fails with EDQUOT. Quotas must be enabled:
// ErrNotSupported otherwise.
func SetQgroupLimit(f *os.File, subvolID uint64, bytes uint64) error {
	a := btrfsQgroupLimitArgs{QgroupID: subvolID, Flags: btrfsQgroupLimitMaxRfer, MaxRfer: bytes}
	if bytes == 0 {
		a.MaxRfer = btrfsLimitClear
	}
	if subvolID == 0 {
		return fmt.Errorf("%w: qgroup 0/0", ErrInvalid)
	}
	if err := btrfsIoctl(f, btrfsIocQgroupLimit, unsafe.Pointer(&a)); err != nil {
		if errors.Is(err, unix.ENOTCONN) {
			err = fmt.Errorf("%w: quotas not enabled (%w)", ErrNotSupported, err)
		}
		return fmt.Errorf("setting the limit of qgroup 0/%d on %s: %w", subvolID, f.Name(), err)
	}
	return nil
}

// QgroupUsage returns the referenced bytes of subvolume subvolID's qgroup
// and its limit (Inodes are not counted by btrfs). It first commits the
// current transaction (BTRFS_IOC_SYNC), since qgroup numbers are only
// brought up to date at a commit; so data written and not yet flushed is
// counted. ErrNotFound: no such qgroup. ErrNotSupported: quotas disabled.
func QgroupUsage(f *os.File, subvolID uint64) (Usage, error) {
	if err := btrfsIoctl(f, btrfsIocSync, nil); err != nil {
		return Usage{}, fmt.Errorf("syncing %s: %w", f.Name(), err)
	}
	info, err := searchQuotaTree(f, btrfsQgroupInfoKey, subvolID)
	if err == nil && info == nil {
		err = fmt.Errorf("qgroup 0/%d: %w", subvolID, ErrNotFound)
	}
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			err = fmt.Errorf("%w: quotas not enabled (%w)", ErrNotSupported, err)
		}
		return Usage{}, fmt.Errorf("usage of qgroup 0/%d on %s: %w", subvolID, f.Name(), err)
	}
	var u Usage
	if len(info) >= 16 { // generation, rfer, rfer_cmpr, excl, excl_cmpr
		u.Bytes = le64(info[8:])
	}
	limit, err := searchQuotaTree(f, btrfsQgroupLimitKey, subvolID)
	if err != nil {
		return Usage{}, fmt.Errorf("limit of qgroup 0/%d on %s: %w", subvolID, f.Name(), err)
	}
	if len(limit) >= 16 && le64(limit)&btrfsQgroupLimitMaxRfer != 0 { // flags, max_rfer, ...
		u.Limits.Bytes = le64(limit[8:])
	}
	return u, nil
}

// searchQuotaTree returns the body of the quota tree item (0, typ, offset),
// nil if there is none; ENOENT when the filesystem has no quota tree.
func searchQuotaTree(f *os.File, typ uint32, offset uint64) ([]byte, error) {
	a := &btrfsSearchArgs{Key: btrfsSearchKey{
		TreeID:     btrfsQuotaTreeObjectID,
		MinOffset:  offset,
		MaxOffset:  offset,
		MaxTransID: ^uint64(0),
		MinType:    typ,
		MaxType:    typ,
		NrItems:    1,
	}}
	if err := btrfsIoctl(f, btrfsIocTreeSearch, unsafe.Pointer(a)); err != nil {
		return nil, err
	}
	if a.Key.NrItems == 0 {
		return nil, nil
	}
	var h btrfsSearchHeader
	hs := int(unsafe.Sizeof(h))
	h = *(*btrfsSearchHeader)(unsafe.Pointer(&a.Buf[0]))
	if h.Type != typ || h.Offset != offset || hs+int(h.Len) > len(a.Buf) {
		return nil, nil
	}
	return append([]byte(nil), a.Buf[hs:hs+int(h.Len)]...), nil
}

// le64 decodes a little-endian uint64: btrfs items are little-endian.
func le64(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }
