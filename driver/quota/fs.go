package quota

import (
	"errors"
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Kind is the type of a filesystem, as far as quotas are concerned.
type Kind int

// The filesystem kinds that Detect tells apart.
const (
	KindOther Kind = iota // anything else: no project quota
	KindXFS               // XFS: project quota with -o prjquota
	KindExt4              // ext2/3/4 (one magic): project quota with -O quota,project and -o prjquota
	KindBtrfs             // btrfs: subvolumes and qgroups instead
)

// String returns "xfs", "ext4", "btrfs" or "other".
func (k Kind) String() string {
	switch k {
	case KindXFS:
		return "xfs"
	case KindExt4:
		return "ext4"
	case KindBtrfs:
		return "btrfs"
	default:
		return "other"
	}
}

// Detect returns the kind of the filesystem that holds the open file or
// directory f, from the magic number statfs(2) reports.
func Detect(f *os.File) (Kind, error) {
	var st unix.Statfs_t
	if err := withFd(f, func(fd int) error { return unix.Fstatfs(fd, &st) }); err != nil {
		return KindOther, fmt.Errorf("statfs %s: %w", f.Name(), err)
	}
	return kindOfMagic(uint32(st.Type)), nil
}

func kindOfMagic(magic uint32) Kind {
	switch magic {
	case unix.XFS_SUPER_MAGIC:
		return KindXFS
	case unix.EXT4_SUPER_MAGIC:
		return KindExt4
	case unix.BTRFS_SUPER_MAGIC:
		return KindBtrfs
	default:
		return KindOther
	}
}

// FS is a handle for the project quotas of one mounted filesystem, kept as
// an open directory of that filesystem. Its methods are safe for
// concurrent use; the kernel serialises quota updates.
type FS struct {
	dir    *os.File
	kind   Kind
	dev    uint64
	device string // block device for quotactl(2); "" when quotactl_fd(2) is used
}

// Open opens the directory path (any directory of the filesystem, such as
// a pool root) for quota calls. It fails only when the directory cannot be
// opened: a filesystem without project quota gives an FS whose State says
// so and whose Supported returns ErrNotSupported.
func Open(path string) (*FS, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, fmt.Errorf("open %s: %w", path, ErrNotFound)
		}
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return newFS(os.NewFile(uintptr(fd), path))
}

// NewFS is Open for a directory that is already open (for instance through
// os.Root). The FS keeps its own duplicate of the descriptor: the caller
// may close dir, and must Close the FS.
func NewFS(dir *os.File) (*FS, error) {
	var dup int
	err := withFd(dir, func(fd int) error {
		var err error
		dup, err = unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dup %s: %w", dir.Name(), err)
	}
	return newFS(os.NewFile(uintptr(dup), dir.Name()))
}

func newFS(dir *os.File) (*FS, error) {
	var st unix.Stat_t
	if err := withFd(dir, func(fd int) error { return unix.Fstat(fd, &st) }); err != nil {
		dir.Close()
		return nil, fmt.Errorf("stat %s: %w", dir.Name(), err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		dir.Close()
		return nil, fmt.Errorf("%s: %w: not a directory", dir.Name(), ErrInvalid)
	}
	kind, err := Detect(dir)
	if err != nil {
		dir.Close()
		return nil, err
	}
	f := &FS{dir: dir, kind: kind, dev: st.Dev}
	if (kind == KindXFS || kind == KindExt4) && (forceDevicePath || !haveQuotactlFD()) {
		// Without quotactl_fd, a device is needed; a filesystem without
		// one has no usable quota (State then reports none).
		if dev, err := blockDevice(dir); err == nil {
			f.device = dev
		}
	}
	return f, nil
}

// Close closes the FS's directory.
func (f *FS) Close() error { return f.dir.Close() }

// Kind returns the filesystem's kind.
func (f *FS) Kind() Kind { return f.kind }

// Dev returns the filesystem's device number (st_dev): FSes with one Dev
// are one filesystem and must share one Allocator.
func (f *FS) Dev() uint64 { return f.dev }

// Path returns the path the FS was opened with.
func (f *FS) Path() string { return f.dir.Name() }

// State says what project quota a mounted filesystem offers.
type State struct {
	Accounting bool // project usage is counted
	Enforced   bool // project limits are enforced
}

// State asks the kernel whether project quota is counted and enforced on
// the filesystem: Q_XGETQSTATV, which the kernel answers for XFS and ext4
// alike; Q_XGETQSTAT, then Q_GETINFO (which cannot tell enforcement from
// accounting) on kernels without it. A filesystem without quota support,
// or of another kind, gives the zero State and no error.
func (f *FS) State() (State, error) {
	if f.kind != KindXFS && f.kind != KindExt4 {
		return State{}, nil
	}
	if f.device == "" && !haveQuotactlFD() {
		return State{}, nil // no device found for quotactl(2)
	}
	var flags uint16
	sv := fsQuotaStatV{Version: fsQStatVVersion1}
	err := f.quotactl(qXGetQStatV, 0, unsafe.Pointer(&sv))
	flags = sv.Flags
	if errors.Is(err, unix.EINVAL) {
		var s fsQuotaStat
		err = f.quotactl(qXGetQStat, 0, unsafe.Pointer(&s))
		flags = s.Flags
	}
	if errors.Is(err, unix.EINVAL) {
		var info ifDqinfo
		if err = f.quotactl(qGetInfo, 0, unsafe.Pointer(&info)); err == nil {
			flags = fsQuotaPDQAcct | fsQuotaPDQEnfd
		}
	}
	if err != nil {
		if notSupportedErrno(err) {
			return State{}, nil
		}
		return State{}, fmt.Errorf("quota state of %s: %w", f.dir.Name(), err)
	}
	return State{
		Accounting: flags&fsQuotaPDQAcct != 0,
		Enforced:   flags&fsQuotaPDQEnfd != 0,
	}, nil
}

// Supported returns nil when project limits are enforced on the filesystem,
// and an error wrapping ErrNotSupported, saying why, when they are not.
func (f *FS) Supported() error {
	switch f.kind {
	case KindXFS, KindExt4:
	default:
		return fmt.Errorf("%w: %s is on %s", ErrNotSupported, f.dir.Name(), f.kind)
	}
	st, err := f.State()
	if err != nil {
		return err
	}
	if !st.Enforced {
		return fmt.Errorf("%w: %s (%s) is not mounted with prjquota", ErrNotSupported, f.dir.Name(), f.kind)
	}
	set, err := f.commands()
	if err != nil {
		return err
	}
	if set == cmdsNone {
		return fmt.Errorf("%w: %s (%s): this kernel's quotactl(2) has no project quota commands "+
			"for it (the generic ones need Linux 4.1; XFS has its own on every kernel)", ErrNotSupported, f.dir.Name(), f.kind)
	}
	return nil
}
