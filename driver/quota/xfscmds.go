package quota

import (
	"errors"
	"fmt"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The quota commands a kernel serves project quotas with. Linux 4.6 and
// later serve the generic ones (PRJQUOTA, 4.1) and Q_GETNEXTQUOTA (4.6);
// 4.1 to 4.5 the generic ones without Q_GETNEXTQUOTA; before 4.1 (RHEL and
// CentOS 7's 3.10) only XFS's own commands (Q_XGETQUOTA, Q_XSETQLIM) know
// project quotas.
type cmdSet int

const (
	cmdsGeneric cmdSet = iota // Q_GETQUOTA, Q_SETQUOTA, Q_GETNEXTQUOTA
	cmdsNoNext                // Q_GETQUOTA, Q_SETQUOTA: no scan of the projects
	cmdsXFS                   // Q_XGETQUOTA, Q_XSETQLIM: no scan of the projects
	cmdsNone                  // no project quota commands at all
)

func (c cmdSet) String() string {
	return [...]string{"generic quota commands", "generic quota commands without Q_GETNEXTQUOTA",
		"XFS quota commands (Q_XGETQUOTA, Q_XSETQLIM)", "none"}[c]
}

// The XFS quota interface, from <linux/dqblk_xfs.h>.
const (
	qXGetQuota  = 'X'<<8 + 3 // Q_XGETQUOTA
	qXSetQLim   = 'X'<<8 + 4 // Q_XSETQLIM
	fsDquotVer  = 1          // FS_DQUOT_VERSION
	fsProjQuota = 2          // FS_PROJ_QUOTA
	fsDqLimits  = 0xf        // FS_DQ_ISOFT | FS_DQ_IHARD | FS_DQ_BSOFT | FS_DQ_BHARD
	basicBlock  = 512        // the unit of fs_disk_quota's block counts
)

// fsDiskQuota is struct fs_disk_quota (Q_XGETQUOTA, Q_XSETQLIM).
type fsDiskQuota struct {
	Version      int8
	Flags        int8
	FieldMask    uint16
	ID           uint32
	BlkHardLimit uint64
	BlkSoftLimit uint64
	InoHardLimit uint64
	InoSoftLimit uint64
	BCount       uint64
	ICount       uint64
	ITimer       int32
	BTimer       int32
	IWarns       uint16
	BWarns       uint16
	_            [4]int8
	RtbHardLimit uint64
	RtbSoftLimit uint64
	RtbCount     uint64
	RtbTimer     int32
	RtbWarns     uint16
	_            int16
	_            [8]byte
}

// cmdSets caches, per filesystem kind, what the running kernel answers.
var cmdSets sync.Map // Kind -> cmdSet

// commands finds (once per filesystem kind) the commands that serve
// project quotas here: the first probe answered with anything but EINVAL
// (an ID without a record answers ENOENT, which is fine).
func (f *FS) commands() (cmdSet, error) {
	if v, ok := cmdSets.Load(f.kind); ok {
		return v.(cmdSet), nil
	}
	set := cmdsNone
	probes := []struct {
		set  cmdSet
		call func() error
	}{
		{cmdsGeneric, func() error { var d ifNextDqblk; return f.quotactl(qGetNextQuota, 0, unsafe.Pointer(&d)) }},
		{cmdsNoNext, func() error { var d ifDqblk; return f.quotactl(qGetQuota, 0, unsafe.Pointer(&d)) }},
	}
	if f.kind == KindXFS {
		probes = append(probes, struct {
			set  cmdSet
			call func() error
		}{cmdsXFS, func() error { var d fsDiskQuota; return f.quotactl(qXGetQuota, 0, unsafe.Pointer(&d)) }})
	}
	for _, p := range probes {
		err := p.call()
		if err == nil || errors.Is(err, unix.ENOENT) {
			set = p.set
			break
		}
		if !errors.Is(err, unix.EINVAL) {
			return 0, f.wrap(err, "probing the project quota commands")
		}
	}
	cmdSets.Store(f.kind, set)
	return set, nil
}

// Commands names the quota commands that serve this filesystem's project
// quotas, for the logs.
func (f *FS) Commands() string {
	set, err := f.commands()
	if err != nil {
		return "unknown: " + err.Error()
	}
	return set.String()
}

// xfsSetLimit is SetLimit with Q_XSETQLIM: limits in 512-byte basic
// blocks, soft limits cleared.
func (f *FS) xfsSetLimit(id uint32, kib, inodes uint64) error {
	d := fsDiskQuota{Version: fsDquotVer, Flags: fsProjQuota, FieldMask: fsDqLimits, ID: id,
		BlkHardLimit: kib * (dqBlockSize / basicBlock), InoHardLimit: inodes}
	return f.quotactl(qXSetQLim, id, unsafe.Pointer(&d))
}

// xfsGet reads project id with Q_XGETQUOTA, in the generic form.
func (f *FS) xfsGet(id uint32) (ifDqblk, error) {
	var d fsDiskQuota
	if err := f.quotactl(qXGetQuota, id, unsafe.Pointer(&d)); err != nil {
		return ifDqblk{}, err
	}
	if d.Flags != fsProjQuota && d.Flags != 0 {
		return ifDqblk{}, fmt.Errorf("Q_XGETQUOTA answered a quota of type %d, not a project's", d.Flags)
	}
	toKiB := func(bb uint64) uint64 { return bb * basicBlock / dqBlockSize }
	return ifDqblk{
		BHardLimit: toKiB(d.BlkHardLimit), BSoftLimit: toKiB(d.BlkSoftLimit),
		CurSpace: d.BCount * basicBlock, IHardLimit: d.InoHardLimit, ISoftLimit: d.InoSoftLimit,
		CurInodes: d.ICount, Valid: qifLimits,
	}, nil
}

// getQuota reads project id's usage and limits with the commands the
// kernel serves (Q_GETQUOTA or Q_XGETQUOTA).
func (f *FS) getQuota(id uint32) (ifDqblk, error) {
	set, err := f.commands()
	if err != nil {
		return ifDqblk{}, err
	}
	if set == cmdsXFS {
		return f.xfsGet(id)
	}
	var d ifDqblk
	err = f.quotactl(qGetQuota, id, unsafe.Pointer(&d))
	return d, err
}
