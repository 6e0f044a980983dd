package mounts

import (
	"errors"
	"fmt"
	"io/fs"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/localdisk-csi/localdisk/driver/mounter"
	"github.com/localdisk-csi/localdisk/driver/pool"
	"github.com/localdisk-csi/localdisk/driver/volume"
)

// Amount is one unit's numbers in Stats.
type Amount struct{ Total, Used, Available int64 }

// Stats is what NodeGetVolumeStats reports of a volume.
type Stats struct {
	Bytes Amount
	// Inodes is nil where inodes are not reported (a raw block volume, a
	// filesystem that counts none).
	Inodes *Amount
}

// Stats reports volume id's own usage at a path where it is mounted (its
// target or staging path): total is its capacity, used what it holds,
// available what it may still write (bounded by its filesystem's free
// space). ErrNotMounted when path does not show the volume. When the pool
// is unreachable behind the mount, the mount's own filesystem numbers are
// reported (volume.Health says why).
func (m *Mounts) Stats(id, path string) (Stats, error) {
	v, err := m.vols.Lookup(id)
	if err != nil {
		return Stats{}, err
	}
	path, mark, err := m.mountedAt(v, path)
	if err != nil {
		return Stats{}, err
	}
	if v.Device() {
		if v.Block {
			return Stats{Bytes: Amount{Total: v.Capacity}}, nil
		}
		return statfs(id, path)
	}
	u, err := m.vols.Usage(v)
	if errors.Is(err, volume.ErrUnhealthy) && !mark { // a mark's filesystem is the state dir's
		return statfs(id, path)
	}
	if err != nil {
		return Stats{}, err
	}
	st := Stats{Bytes: Amount{Total: v.Capacity, Used: u.Bytes, Available: max(min(v.Capacity-u.Bytes, u.FreeBytes), 0)}}
	switch {
	case u.InodeLimit > 0: // the volume's own limit, as for bytes
		st.Inodes = &Amount{Total: u.InodeLimit, Used: u.Inodes, Available: max(min(u.InodeLimit-u.Inodes, u.FreeInodes), 0)}
	case !u.NoInodes: // no limit of its own: what its filesystem has left
		st.Inodes = &Amount{Total: u.Inodes + u.FreeInodes, Used: u.Inodes, Available: u.FreeInodes}
	}
	return st, nil
}

// statfs reports the filesystem numbers of the mount at p.
func statfs(id, p string) (Stats, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(p, &st); err != nil {
		if mounter.Corrupted(err) {
			return Stats{}, fmt.Errorf("%w: volume %s at %s: %v", ErrUnresponsive, id, p, err)
		}
		if errors.Is(err, fs.ErrNotExist) {
			return Stats{}, fmt.Errorf("%w: volume_path %s: %v", ErrNotMounted, p, err)
		}
		return Stats{}, fmt.Errorf("statfs %s: %v", p, err)
	}
	bs := st.Bsize
	return Stats{
		Bytes:  Amount{Total: int64(st.Blocks) * bs, Available: int64(st.Bavail) * bs, Used: int64(st.Blocks-st.Bfree) * bs},
		Inodes: &Amount{Total: int64(st.Files), Available: int64(st.Ffree), Used: int64(st.Files - st.Ffree)},
	}, nil
}

// ConfirmExpansion confirms an expansion of volume id, mounted at path,
// that ControllerExpandVolume already made (a bind-mounted directory has
// no filesystem to grow), and returns its size. A required size above the
// volume's, or a limit below it, is pool.ErrOutOfRange.
func (m *Mounts) ConfirmExpansion(id, path string, required, limit int64) (int64, error) {
	v, err := m.vols.Lookup(id)
	if err != nil {
		return 0, err
	}
	if _, _, err := m.mountedAt(v, path); err != nil {
		return 0, err
	}
	if required > v.Capacity {
		return 0, fmt.Errorf("%w: volume %s has %d bytes, %d requested: expand it with ControllerExpandVolume first", pool.ErrOutOfRange, id, v.Capacity, required)
	}
	if limit > 0 && limit < v.Capacity {
		return 0, fmt.Errorf("%w: volume %s has %d bytes, above limit_bytes %d: volumes do not shrink", pool.ErrOutOfRange, id, v.Capacity, limit)
	}
	return v.Capacity, nil
}

// mountedAt checks that the volume (or a directory of it) is mounted at
// path p, or recorded staged there, and returns p canonical, and whether p
// shows nothing of the volume's filesystem (a whole disk's staging mark, a
// staging record); ErrNotMounted otherwise.
func (m *Mounts) mountedAt(v *volume.Volume, p string) (string, bool, error) {
	p, err := mounter.Canonical(p)
	if err != nil {
		return "", false, fmt.Errorf("%w: volume_path: %v", ErrNotMounted, err)
	}
	if m.staged.Has(v.ID, p) { // staged there without a mount: p shows nothing of it
		return p, true, nil
	}
	t, src, err := m.snapshot(v, v.Block)
	if err != nil {
		return "", false, err
	}
	e := t.At(p)
	if e != nil && v.WholeDisk() { // its staging path shows its mark
		if marks, err := m.vols.StageSources(t, v); err == nil && slices.Contains(marks, mounter.SourceOf(e)) {
			return p, true, nil
		}
	}
	if e == nil || !mounter.SourceOf(e).Within(src) {
		return "", false, fmt.Errorf("%w: volume %s is not mounted at %s", ErrNotMounted, v.ID, p)
	}
	return p, false, nil
}
