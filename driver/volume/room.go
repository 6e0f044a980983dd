package volume

import (
	"golang.org/x/sys/unix"

	"github.com/localdisk-csi/localdisk/driver/pool"
)

// Room is what a ROOT or PATH pool's filesystem can still take for new
// volumes: its free space minus the pool's reserve, in whole MiB, never
// negative. Other programs write to the same filesystem (kubelet, the
// container runtime, the Mesos agent on a node's root disk), so the pool's
// own accounting alone would offer space that could never be written.
// ok is false when the filesystem cannot be measured.
func (p *Pool) Room() (room int64, ok bool) {
	total, free, ok := p.Filesystem()
	if !ok {
		return 0, false
	}
	return pool.FloorMiB(max(free-p.Spec.ReserveOf(total), 0)), true
}

// Filesystem is the size and the free space (for unprivileged writers) of
// a ROOT or PATH pool's filesystem, now.
func (p *Pool) Filesystem() (size, free int64, ok bool) {
	var st unix.Statfs_t
	if !p.Kind.Directory() || unix.Statfs(p.dir, &st) != nil {
		return 0, 0, false
	}
	return int64(st.Blocks) * st.Bsize, int64(st.Bavail) * st.Bsize, true
}

// roomFor bounds what a ROOT or PATH pool offers by its filesystem's room.
func roomFor(p *Pool, u pool.Usage) pool.Usage {
	if room, ok := p.Room(); ok {
		u.Free, u.MaxVolume = min(u.Free, room), min(u.MaxVolume, room)
	}
	return u
}
