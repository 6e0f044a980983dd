package quota

import (
	"fmt"
	"os"
	"sync"
	"unsafe"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// The quotactl(2) interface, from <linux/quota.h> and <linux/dqblk_xfs.h>;
// golang.org/x/sys/unix has the system call numbers but not these.
const (
	prjQuota = 2 // PRJQUOTA

	qGetInfo      = 0x800005   // Q_GETINFO
	qGetQuota     = 0x800007   // Q_GETQUOTA
	qSetQuota     = 0x800008   // Q_SETQUOTA
	qGetNextQuota = 0x800009   // Q_GETNEXTQUOTA
	qXGetQStat    = 'X'<<8 + 5 // Q_XGETQSTAT
	qXGetQStatV   = 'X'<<8 + 8 // Q_XGETQSTATV

	qifBLimits = 1 << 0 // QIF_BLIMITS
	qifILimits = 1 << 2 // QIF_ILIMITS
	qifLimits  = qifBLimits | qifILimits

	// dqBlockSize is the unit of if_dqblk's block limits (QIF_DQBLKSIZE).
	dqBlockSize = 1024

	fsQStatVVersion1 = 1      // FS_QSTATV_VERSION1
	fsQuotaPDQAcct   = 1 << 4 // FS_QUOTA_PDQ_ACCT
	fsQuotaPDQEnfd   = 1 << 5 // FS_QUOTA_PDQ_ENFD
)

// ifDqblk is struct if_dqblk (Q_GETQUOTA, Q_SETQUOTA): block limits in
// 1 KiB units, space used in bytes.
type ifDqblk struct {
	BHardLimit uint64
	BSoftLimit uint64
	CurSpace   uint64
	IHardLimit uint64
	ISoftLimit uint64
	CurInodes  uint64
	BTime      uint64
	ITime      uint64
	Valid      uint32
	_          uint32
}

// ifNextDqblk is struct if_nextdqblk (Q_GETNEXTQUOTA): an if_dqblk and the
// ID it belongs to.
type ifNextDqblk struct {
	BHardLimit uint64
	BSoftLimit uint64
	CurSpace   uint64
	IHardLimit uint64
	ISoftLimit uint64
	CurInodes  uint64
	BTime      uint64
	ITime      uint64
	Valid      uint32
	ID         uint32
}

// fsQFileStatV is struct fs_qfilestatv.
type fsQFileStatV struct {
	Ino      uint64
	NBlks    uint64
	NExtents uint32
	_        uint32
}

// fsQuotaStatV is struct fs_quota_statv (Q_XGETQSTATV). The kernel answers
// it for every filesystem with quota operations, not only XFS.
type fsQuotaStatV struct {
	Version      int8
	_            uint8
	Flags        uint16
	InCoreDQs    uint32
	UQuota       fsQFileStatV
	GQuota       fsQFileStatV
	PQuota       fsQFileStatV
	BTimeLimit   int32
	ITimeLimit   int32
	RTBTimeLimit int32
	BWarnLimit   uint16
	IWarnLimit   uint16
	RTBWarnLimit uint16
	_            uint16
	_            uint32
	_            [7]uint64
}

// fsQuotaStat is the start of struct fs_quota_stat (Q_XGETQSTAT), the
// older form: only its flags are read. The kernel writes 80 bytes.
type fsQuotaStat struct {
	Version int8
	_       uint8
	Flags   uint16
	_       [76]byte
}

// ifDqinfo is struct if_dqinfo (Q_GETINFO).
type ifDqinfo struct {
	BGrace uint64
	IGrace uint64
	Flags  uint32
	Valid  uint32
}

// qcmd is QCMD(cmd, type).
func qcmd(cmd, typ uint32) uint32 { return cmd<<8 | typ&0xff }

var (
	haveQuotactlFDOnce sync.Once
	haveQuotactlFDVal  bool
)

// haveQuotactlFD reports whether quotactl_fd(2) can be used. Since ENOSYS
// from it may also mean "this filesystem has no quota operations", it is
// probed once with an invalid descriptor: only EBADF means it is there.
// ENOSYS (a kernel before 5.14) and EPERM (a seccomp profile that denies
// it, as older container runtimes' do) mean quotactl(2) on the block device.
func haveQuotactlFD() bool {
	haveQuotactlFDOnce.Do(func() {
		_, _, errno := unix.Syscall6(unix.SYS_QUOTACTL_FD, uintptr(^uint32(0)),
			uintptr(qcmd(qGetInfo, prjQuota)), 0, 0, 0, 0)
		haveQuotactlFDVal = errno == unix.EBADF
	})
	return haveQuotactlFDVal
}

// Interface names the system call that project quotas go through in this
// process: quotactl_fd(2) on an open directory, or quotactl(2) on the
// filesystem's block device where quotactl_fd cannot be used.
func Interface() string {
	if haveQuotactlFD() {
		return "quotactl_fd(2)"
	}
	return "quotactl(2) on the block device"
}

// forceDevicePath makes Open use quotactl(2) with a block device even when
// quotactl_fd(2) exists; tests set it to cover the fallback.
var forceDevicePath = false

// quotactl runs one quotactl command for project quotas on f's filesystem:
// quotactl_fd(2) on the open directory, or quotactl(2) on the block device
// found at Open when the kernel lacks quotactl_fd.
func (f *FS) quotactl(cmd uint32, id uint32, addr unsafe.Pointer) error {
	c := uintptr(qcmd(cmd, prjQuota))
	if f.device == "" {
		return withFd(f.dir, func(fd int) error {
			_, _, errno := unix.Syscall6(unix.SYS_QUOTACTL_FD, uintptr(fd), c,
				uintptr(id), uintptr(addr), 0, 0)
			if errno != 0 {
				return errno
			}
			return nil
		})
	}
	dev, err := unix.BytePtrFromString(f.device)
	if err != nil {
		return err
	}
	_, _, errno := unix.Syscall6(unix.SYS_QUOTACTL, c, uintptr(unsafe.Pointer(dev)),
		uintptr(id), uintptr(addr), 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}

// blockDevice finds the block device of the filesystem that holds the open
// directory dir, for quotactl(2): the source of the mount whose
// major:minor is the directory's st_dev, if that source is a block device
// with that number.
func blockDevice(dir *os.File) (string, error) {
	var st unix.Stat_t
	if err := withFd(dir, func(fd int) error { return unix.Fstat(fd, &st) }); err != nil {
		return "", fmt.Errorf("stat %s: %w", dir.Name(), err)
	}
	major, minor := int(unix.Major(st.Dev)), int(unix.Minor(st.Dev))
	mounts, err := mountinfo.GetMounts(func(m *mountinfo.Info) (skip, stop bool) {
		return m.Major != major || m.Minor != minor, false
	})
	if err != nil {
		return "", fmt.Errorf("reading the mount table: %w", err)
	}
	for _, m := range mounts {
		var dst unix.Stat_t
		if unix.Stat(m.Source, &dst) == nil && dst.Mode&unix.S_IFMT == unix.S_IFBLK && dst.Rdev == st.Dev {
			return m.Source, nil
		}
	}
	return "", fmt.Errorf("%w: no block device for %s (device %d:%d)", ErrNotSupported, dir.Name(), major, minor)
}

// withFd runs fn with the descriptor of f, keeping f open meanwhile.
func withFd(f *os.File, fn func(fd int) error) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = fn(int(fd)) }); err != nil {
		return err
	}
	return ferr
}
