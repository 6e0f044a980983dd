package load

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/state"
)

// LimitStateChanges says what the limit counts as durable state changes.
const LimitStateChanges = "create = 1 record write (write temp, fsync, rename, fsync dir); " +
	"delete = 1 record removal (unlink, fsync dir); stage/publish record nothing " +
	"(the kernel's mount table is their record)"

// Limit is the physical limit of a volume's life: the same cycle done
// directly with the syscalls it needs, in the calling process, plus the
// durable record writes a crash-safe plugin cannot avoid, one per state
// change (see LimitStateChanges). Records have the plugin's format and size.
//
//	create:    record write; mkdir POOL/ID
//	stage:     mkdir STAGING; bind POOL/ID at STAGING
//	publish:   mkdir TARGET; bind STAGING at TARGET (read-only when asked)
//	unpublish: umount TARGET; rmdir TARGET
//	unstage:   umount STAGING
//	delete:    rmdir POOL/ID (remove its files first if any); record removal
//
// With OneBind it is the one-bind durable minimum instead: stage and
// unstage do nothing (the CO's staging directory is the CO's), and publish
// binds POOL/ID itself at TARGET. That is the least any plugin can do for
// a directory volume: one mount and one unmount per cycle.
type Limit struct {
	stateDir, poolDir string
	dirfd             int // stateDir, for fsync
	// Mount2 binds with mount(2) MS_BIND (and a MS_REMOUNT|MS_RDONLY for
	// read-only) instead of open_tree(2)+move_mount(2), as the plugin does.
	Mount2 bool
	// OneBind: the one-bind durable minimum (see above).
	OneBind bool
}

var _ Backend = (*Limit)(nil)

// NewLimit makes dir/state (the records) and dir/pool (the volumes). Use a
// directory on the same filesystem as the plugin's state and pool.
func NewLimit(dir string) (*Limit, error) {
	l := &Limit{stateDir: filepath.Join(dir, "state"), poolDir: filepath.Join(dir, "pool")}
	for _, d := range []string{l.stateDir, l.poolDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, err
		}
	}
	fd, err := unix.Open(l.stateDir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", l.stateDir, err)
	}
	l.dirfd = fd
	return l, nil
}

// Close releases the state directory.
func (l *Limit) Close() error { return unix.Close(l.dirfd) }

func op(what, path string, err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%s %s: %w", what, path, err)
}

// Create writes the record durably, then makes the volume's directory.
func (l *Limit) Create(_ context.Context, name string) (Vol, error) {
	id := layout.DirVolumeID(PoolName, name)
	ctx := layout.VolumeContext(PoolName, "root")
	rec := &state.Record{Version: state.Version, ID: id, Name: name, Pool: PoolName, Kind: "root",
		Capacity: 1 << 20, Phase: state.Ready, Context: ctx}
	data, err := json.Marshal(rec)
	if err != nil {
		return Vol{}, err
	}
	final := filepath.Join(l.stateDir, layout.RecordFile(id))
	tmp := filepath.Join(l.stateDir, layout.TempRecordFile(id))
	fd, err := unix.Open(tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return Vol{}, op("create", tmp, err)
	}
	_, err = unix.Write(fd, data)
	if err == nil {
		err = unix.Fsync(fd)
	}
	if cerr := unix.Close(fd); err == nil {
		err = cerr
	}
	if err == nil {
		err = unix.Rename(tmp, final)
	}
	if err == nil {
		err = unix.Fsync(l.dirfd)
	}
	if err != nil {
		return Vol{}, op("write record", final, err)
	}
	dir := filepath.Join(l.poolDir, id)
	if err := unix.Mkdir(dir, 0o755); err != nil {
		return Vol{}, op("mkdir", dir, err)
	}
	return Vol{ID: id, Context: ctx}, nil
}

// Stage makes the staging directory and binds the volume there (OneBind:
// nothing).
func (l *Limit) Stage(_ context.Context, v Vol, staging string) error {
	if l.OneBind {
		return nil
	}
	if err := unix.Mkdir(staging, 0o750); err != nil {
		return op("mkdir", staging, err)
	}
	return l.bind(filepath.Join(l.poolDir, v.ID), staging, false)
}

// Publish makes the target directory and binds the staging mount there
// (OneBind: the volume's directory).
func (l *Limit) Publish(_ context.Context, v Vol, staging, target string, ro bool) error {
	if err := unix.Mkdir(target, 0o750); err != nil {
		return op("mkdir", target, err)
	}
	if l.OneBind {
		return l.bind(filepath.Join(l.poolDir, v.ID), target, ro)
	}
	return l.bind(staging, target, ro)
}

func (l *Limit) bind(src, target string, ro bool) error {
	if l.Mount2 {
		if err := unix.Mount(src, target, "", unix.MS_BIND, ""); err != nil {
			return op("bind mount at", target, err)
		}
		if ro {
			return op("remount ro", target, unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""))
		}
		return nil
	}
	fd, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_SYMLINK_NOFOLLOW)
	if err != nil {
		return op("open_tree", src, err)
	}
	defer unix.Close(fd)
	if ro {
		attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
		if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, attr); err != nil {
			return op("mount_setattr ro for", target, err)
		}
	}
	return op("move_mount to", target, unix.MoveMount(fd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH))
}

// Unpublish unmounts and removes the target.
func (l *Limit) Unpublish(_ context.Context, _ Vol, target string) error {
	if err := unix.Unmount(target, unix.UMOUNT_NOFOLLOW); err != nil {
		return op("umount", target, err)
	}
	return op("rmdir", target, unix.Rmdir(target))
}

// Unstage unmounts the staging path (OneBind: nothing).
func (l *Limit) Unstage(_ context.Context, _ Vol, staging string) error {
	if l.OneBind {
		return nil
	}
	return op("umount", staging, unix.Unmount(staging, unix.UMOUNT_NOFOLLOW))
}

// Delete removes the volume's directory, then its record durably.
func (l *Limit) Delete(_ context.Context, v Vol) error {
	dir := filepath.Join(l.poolDir, v.ID)
	err := unix.Rmdir(dir)
	if errors.Is(err, unix.ENOTEMPTY) {
		err = os.RemoveAll(dir)
	}
	if err != nil {
		return op("remove", dir, err)
	}
	rec := filepath.Join(l.stateDir, layout.RecordFile(v.ID))
	if err := unix.Unlink(rec); err != nil {
		return op("remove record", rec, err)
	}
	return op("fsync", l.stateDir, unix.Fsync(l.dirfd))
}
