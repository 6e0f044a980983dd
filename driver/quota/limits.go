package quota

import (
	"errors"
	"fmt"
	"math"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Limits are the hard limits of a project. Zero means "no limit".
type Limits struct {
	// Bytes is the hard block limit. The kernel counts in 1 KiB units:
	// SetLimit rounds up to a whole KiB.
	Bytes uint64
	// Inodes is the hard limit on files, directories and other inodes.
	Inodes uint64
}

// Usage is what a project holds, and its limits.
type Usage struct {
	Bytes  uint64 // bytes charged to the project (allocated, not apparent size)
	Inodes uint64 // inodes charged to the project; 0 where not counted (btrfs)
	Limits Limits
}

// Empty reports whether the project holds nothing and has no limits.
func (u Usage) Empty() bool { return u == Usage{} }

// SetLimit sets project id's hard limits to l (Q_SETQUOTA on PRJQUOTA),
// raising, lowering or, with the zero Limits, clearing them. Soft limits
// are set to zero (none). Usage already over a new, lower limit stays; only
// further allocation fails with EDQUOT. ID 0 (the default project, whose
// limits XFS applies to every project) is refused with ErrInvalid. A
// filesystem without enforced project quota gives ErrNotSupported.
func (f *FS) SetLimit(id uint32, l Limits) error {
	if id == 0 {
		return fmt.Errorf("%w: project ID 0", ErrInvalid)
	}
	if l.Bytes > math.MaxUint64-(dqBlockSize-1) {
		return fmt.Errorf("%w: block limit %d bytes", ErrInvalid, l.Bytes)
	}
	d := ifDqblk{
		BHardLimit: (l.Bytes + dqBlockSize - 1) / dqBlockSize,
		IHardLimit: l.Inodes,
		Valid:      qifLimits,
	}
	set, err := f.commands()
	if err != nil {
		return err
	}
	if set == cmdsXFS {
		err = f.xfsSetLimit(id, d.BHardLimit, d.IHardLimit)
	} else {
		err = f.quotactl(qSetQuota, id, unsafe.Pointer(&d))
	}
	if err != nil {
		return f.wrap(err, "setting limits of project %d to %d bytes, %d inodes", id, l.Bytes, l.Inodes)
	}
	return nil
}

// ClearLimit removes project id's limits: SetLimit(id, Limits{}). The
// project's usage stays counted until its files are gone.
func (f *FS) ClearLimit(id uint32) error { return f.SetLimit(id, Limits{}) }

// Usage returns what project id holds and its limits (Q_GETQUOTA). A
// project the filesystem has never seen has the zero Usage (XFS answers
// ENOENT for it; that is not an error here).
func (f *FS) Usage(id uint32) (Usage, error) {
	d, err := f.getQuota(id)
	if errors.Is(err, unix.ENOENT) {
		return Usage{}, nil
	}
	if err != nil {
		return Usage{}, f.wrap(err, "reading quota of project %d", id)
	}
	return usageOf(d.CurSpace, d.CurInodes, d.BHardLimit, d.IHardLimit), nil
}

// InUse reports whether the filesystem charges or limits anything to
// project id: some bytes or inodes, or a hard or soft limit. Such an ID
// belongs to someone (another volume, another tool) and must not be
// handed out. Use it as the Allocator's Prober.
func (f *FS) InUse(id uint32) (bool, error) {
	d, err := f.getQuota(id)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, f.wrap(err, "reading quota of project %d", id)
	}
	return d.CurSpace != 0 || d.CurInodes != 0 || d.BHardLimit != 0 || d.BSoftLimit != 0 ||
		d.IHardLimit != 0 || d.ISoftLimit != 0, nil
}

// Next returns the first project with an ID of at least id that the
// filesystem keeps a quota record for, and its usage (Q_GETNEXTQUOTA);
// ok is false when there is none. Records may exist for projects that
// hold nothing and have no limits: check Usage.Empty.
func (f *FS) Next(id uint32) (next uint32, u Usage, ok bool, err error) {
	if set, err := f.commands(); err != nil || set != cmdsGeneric {
		// No Q_GETNEXTQUOTA (before Linux 4.6): nothing to scan; IDs are
		// still probed one by one before they are handed out (InUse).
		return 0, Usage{}, false, err
	}
	var d ifNextDqblk
	err = f.quotactl(qGetNextQuota, id, unsafe.Pointer(&d))
	if errors.Is(err, unix.ENOENT) {
		return 0, Usage{}, false, nil
	}
	if err != nil {
		return 0, Usage{}, false, f.wrap(err, "looking for the project after %d", id)
	}
	return d.ID, usageOf(d.CurSpace, d.CurInodes, d.BHardLimit, d.IHardLimit), true, nil
}

// Projects calls fn for every project from first to last (inclusive) that
// holds something or has limits, in increasing order of ID, and stops at
// the first error fn returns. Use it at start-up to mark the IDs that are
// in use on the filesystem (Allocator.MarkUsed) and to find projects that
// no record explains.
func (f *FS) Projects(first, last uint32, fn func(id uint32, u Usage) error) error {
	for id := first; id <= last; {
		next, u, ok, err := f.Next(id)
		if err != nil {
			return err
		}
		if !ok || next > last || next < id {
			return nil
		}
		if !u.Empty() {
			if err := fn(next, u); err != nil {
				return err
			}
		}
		if next == math.MaxUint32 {
			return nil
		}
		id = next + 1
	}
	return nil
}

func usageOf(space, inodes, bhard, ihard uint64) Usage {
	return Usage{
		Bytes:  space,
		Inodes: inodes,
		Limits: Limits{Bytes: bhard * dqBlockSize, Inodes: ihard},
	}
}

// wrap adds context to a quotactl error, turning the "no quota here"
// errnos into ErrNotSupported.
func (f *FS) wrap(err error, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	if notSupportedErrno(err) {
		return fmt.Errorf("%s on %s: %w (%w)", msg, f.dir.Name(), ErrNotSupported, err)
	}
	return fmt.Errorf("%s on %s: %w", msg, f.dir.Name(), err)
}
