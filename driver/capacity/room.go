package capacity

import (
	"golang.org/x/sys/unix"

	"github.com/localdisk-csi/localdisk/driver/pool"
)

// Room is what the filesystem of a ROOT or PATH pool p can still take for
// new volumes, in whole MiB, never negative: its free space, minus the
// largest reserve of the pools on it, minus what the volumes already
// allocated there have not written yet (their allocations less their
// measured use, MeasuredUse; all of them until measured). all is every
// configured pool (p among them). Other programs write to the same
// filesystem (kubelet, the container runtime, the Mesos agent on a node's
// root disk), so the pools' own accounting alone would offer space that
// could never be written. dev names the filesystem, for callers that share
// one room among its pools; ok is false when it cannot be measured.
func Room(p *Pool, all []*Pool) (room int64, dev uint64, ok bool) {
	total, free, dev, ok := p.filesystem()
	if !ok {
		return 0, 0, false
	}
	reserve, unwritten := p.Spec.ReserveOf(total), int64(0)
	for _, q := range all {
		if !q.Kind.Directory() {
			continue
		}
		if q != p {
			if _, _, qdev, ok := q.filesystem(); !ok || qdev != dev {
				continue
			}
			reserve = max(reserve, q.Spec.ReserveOf(total))
		}
		used, _ := q.MeasuredUse()
		unwritten += max(q.Usage(nil).Allocated-used-q.settledBytes(), 0)
	}
	return pool.FloorMiB(max(free-reserve-unwritten, 0)), dev, true
}

// SetSettled tells Room what of the pool's allocation is written already
// and never grows: the charges of its ready snapshots (driver/snapshot),
// whose data the filesystem's free space shows gone already and which
// must not be held back a second time as still to be written.
func (p *Pool) SetSettled(f func() int64) { p.settled.Store(&f) }

func (p *Pool) settledBytes() int64 {
	if f := p.settled.Load(); f != nil {
		return (*f)()
	}
	return 0
}

// Filesystem is the size and the free space (for unprivileged writers) of
// a ROOT or PATH pool's filesystem, now.
func (p *Pool) Filesystem() (size, free int64, ok bool) {
	size, free, _, ok = p.filesystem()
	return size, free, ok
}

func (p *Pool) filesystem() (size, free int64, dev uint64, ok bool) {
	var sfs unix.Statfs_t
	var st unix.Stat_t
	if !p.Kind.Directory() || unix.Statfs(p.Dir, &sfs) != nil || unix.Stat(p.Dir, &st) != nil {
		return 0, 0, 0, false
	}
	return int64(sfs.Blocks) * sfs.Bsize, int64(sfs.Bavail) * sfs.Bsize, st.Dev, true
}

// RoomFor bounds what a ROOT or PATH pool offers (u, its accounting) by its
// filesystem's Room (rooms maps a filesystem to what is left of it for the
// pools not yet counted, so that pools sharing one are not each offered all
// of it).
func RoomFor(p *Pool, all []*Pool, u pool.Usage, rooms map[uint64]int64) pool.Usage {
	r, dev, ok := Room(p, all)
	if !ok {
		return u
	}
	if left, seen := rooms[dev]; seen {
		r = left
	}
	u.Free, u.MaxVolume = min(u.Free, r), min(u.MaxVolume, r)
	rooms[dev] = r - u.Free
	return u
}
