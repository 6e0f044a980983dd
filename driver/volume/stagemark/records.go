package stagemark

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/localdisk-csi/localdisk/driver/layout"
)

// BootIDFile names this boot of the kernel (a random UUID, new at each
// boot; Linux 2.6.x on).
const BootIDFile = "/proc/sys/kernel/random/boot_id"

// Records are the staging records of ROOT and PATH volumes: a ROOT or PATH
// volume is staged without a mount (publish binds its directory itself),
// and its record, <state-dir>/staging/<volume ID>, says where it is staged,
// so that DeleteVolume refuses a staged volume as it refuses a mounted one,
// also after a restart of the plugin.
//
// A record lives exactly as long as the staging mount it replaces: for this
// boot. It is written without fsync (temp file, rename): a crash of the
// plugin keeps it (the kernel has it), and a crash of the kernel, which
// unmounts everything, may lose it. A record that did reach the disk names
// the boot it was made in (BootIDFile) and is dropped in any later boot,
// as a reboot drops mounts. The plugin is the only writer of its state
// directory, so the records are read once, at open, and kept in memory.
type Records struct {
	root *os.Root // the state directory
	boot string

	mu  sync.Mutex
	at  map[string][]string // volume ID → canonical staging paths
	by  map[string]string   // canonical staging path → volume ID
	dir map[string]dirID    // canonical staging path → its directory when staged
}

// dirID is a staging directory's identity: a directory removed and made
// again at the same path (by a CO that never unstaged) is another one. The
// inode number alone does not tell (a filesystem reuses a freed one at
// once); its birth time does, where statx(2) gives it (Linux 4.11, and a
// filesystem that records it: ext4, XFS, btrfs, tmpfs); without it only a
// directory with another inode number is told apart.
type dirID struct {
	Dev   uint64 `json:"dev"`
	Ino   uint64 `json:"ino"`
	Birth int64  `json:"birth,omitempty"` // ns; 0: unknown
}

// record is a staging record's content.
type record struct {
	Boot  string           `json:"boot"`
	Paths []string         `json:"paths"`
	Dirs  map[string]dirID `json:"dirs,omitempty"`
}

// OpenRecords reads the staging records of the state directory root, made
// in boot (the content of BootIDFile); records of other boots, and
// unreadable ones, are removed.
func OpenRecords(root *os.Root, boot string) (*Records, error) {
	if boot == "" {
		return nil, errors.New("staging records: no boot ID")
	}
	r := &Records{root: root, boot: boot, at: map[string][]string{}, by: map[string]string{}, dir: map[string]dirID{}}
	if err := root.Mkdir(layout.StagingDir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	if fi, err := root.Lstat(layout.StagingDir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("staging records: %s is not a directory", layout.StagingDir)
	}
	d, err := root.Open(layout.StagingDir)
	if err != nil {
		return nil, err
	}
	names, err := d.Readdirnames(-1)
	d.Close()
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		rec, err := r.read(n)
		if err != nil || rec.Boot != boot || strings.HasPrefix(n, layout.TempPrefix) || len(rec.Paths) == 0 {
			if err := root.Remove(path.Join(layout.StagingDir, n)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, err
			}
			continue
		}
		r.set(n, rec.Paths)
		for p, d := range rec.Dirs {
			r.dir[p] = d
		}
	}
	return r, nil
}

// BootID reads BootIDFile.
func BootID() (string, error) {
	b, err := os.ReadFile(BootIDFile)
	if err != nil {
		return "", fmt.Errorf("boot ID: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

func (r *Records) read(name string) (record, error) {
	var rec record
	b, err := r.root.ReadFile(path.Join(layout.StagingDir, name))
	if err == nil {
		err = json.Unmarshal(b, &rec)
	}
	return rec, err
}

// Add records volume id staged at p (canonical); recorded already: nothing
// is written.
func (r *Records) Add(id, p string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if slices.Contains(r.at[id], p) {
		return nil
	}
	if other, ok := r.by[p]; ok {
		return fmt.Errorf("volume %s is staged at %s", other, p)
	}
	d, err := identify(p)
	if err != nil {
		return fmt.Errorf("staging path %s: %w", p, err)
	}
	paths := append(slices.Clip(r.at[id]), p)
	r.dir[p] = d
	if err := r.write(id, paths); err != nil {
		delete(r.dir, p)
		return err
	}
	r.set(id, paths)
	return nil
}

// identify is the identity of the directory at p.
func identify(p string) (dirID, error) {
	d, _, err := identifyAt(p)
	return d, err
}

// identifyAt is the identity of the directory at p, and whether p is sure
// not to be the root of a mount (statx's STATX_ATTR_MOUNT_ROOT, Linux 5.8).
func identifyAt(p string) (d dirID, plain bool, err error) {
	var stx unix.Statx_t
	err = unix.Statx(unix.AT_FDCWD, p, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_TYPE|unix.STATX_INO|unix.STATX_BTIME, &stx)
	if errors.Is(err, unix.ENOSYS) { // before Linux 4.11
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return dirID{}, false, err
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			return dirID{}, false, unix.ENOTDIR
		}
		return dirID{Dev: uint64(st.Dev), Ino: st.Ino}, false, nil
	}
	if err != nil {
		return dirID{}, false, err
	}
	if stx.Mode&unix.S_IFMT != unix.S_IFDIR {
		return dirID{}, false, unix.ENOTDIR
	}
	d = dirID{Dev: unix.Mkdev(stx.Dev_major, stx.Dev_minor), Ino: stx.Ino}
	if stx.Mask&unix.STATX_BTIME != 0 {
		d.Birth = stx.Btime.Sec*1e9 + int64(stx.Btime.Nsec)
	}
	plain = stx.Attributes_mask&unix.STATX_ATTR_MOUNT_ROOT != 0 && stx.Attributes&unix.STATX_ATTR_MOUNT_ROOT == 0
	return d, plain, nil
}

// gone reports that the staging directory recorded at p is no longer
// there: p is missing, or is another directory (made again after the
// recorded one was removed) that is surely not the root of a mount (a
// mount stacked on the staging directory hides it, it does not remove
// it). Whatever cannot be told is not gone: a volume wrongly seen staged
// is only refused deletion, one wrongly seen unstaged would be deleted.
func (r *Records) gone(p string) bool {
	now, plain, err := identifyAt(p)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return true
	}
	r.mu.Lock()
	was, known := r.dir[p]
	r.mu.Unlock()
	return err == nil && known && now != was && plain
}

// Remove drops the staging of volume id at p (canonical); none is no
// error.
func (r *Records) Remove(id, p string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !slices.Contains(r.at[id], p) {
		return nil
	}
	paths := slices.DeleteFunc(slices.Clone(r.at[id]), func(q string) bool { return q == p })
	if len(paths) == 0 {
		err := r.root.Remove(path.Join(layout.StagingDir, id))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("staging record of volume %s: %w", id, err)
		}
		r.set(id, nil)
		return nil
	}
	if err := r.write(id, paths); err != nil {
		return err
	}
	r.set(id, paths)
	return nil
}

// set makes paths volume id's staging paths (mu held, or at open).
func (r *Records) set(id string, paths []string) {
	for _, p := range r.at[id] {
		delete(r.by, p)
		if !slices.Contains(paths, p) {
			delete(r.dir, p)
		}
	}
	if len(paths) == 0 {
		delete(r.at, id)
		return
	}
	r.at[id] = paths
	for _, p := range paths {
		r.by[p] = id
	}
}

// At names the volume recorded staged at p (canonical). A record whose
// staging directory is gone (see gone) is dropped instead: the CO that
// removed it has unstaged that volume in all but name.
func (r *Records) At(p string) (string, bool) {
	r.mu.Lock()
	id, ok := r.by[p]
	r.mu.Unlock()
	if ok && r.gone(p) {
		_ = r.Remove(id, p) // best effort: asked again at the next call
		return "", false
	}
	return id, ok
}

// Has reports that volume id is recorded staged at p (canonical).
func (r *Records) Has(id, p string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Contains(r.at[id], p)
}

// Paths lists where volume id is recorded staged.
func (r *Records) Paths(id string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.at[id])
}

// Staged names a path where volume id is recorded staged whose staging
// directory is still the one it was staged on: a CO that removed its
// staging directory (even if it made one again at the same path) has
// unstaged the volume in all but name, and such a record is dropped.
func (r *Records) Staged(id string) (string, bool) {
	r.mu.Lock()
	paths := slices.Clone(r.at[id])
	r.mu.Unlock()
	for _, p := range paths {
		if !r.gone(p) {
			return p, true
		}
		_ = r.Remove(id, p) // best effort: Staged is asked again at the next delete
	}
	return "", false
}

// write replaces volume id's record with paths: a temp file renamed over
// it, without fsync (see Records). A write that fails (a full state disk)
// leaves no temp file behind.
func (r *Records) write(id string, paths []string) error {
	dirs := make(map[string]dirID, len(paths))
	for _, p := range paths {
		if d, ok := r.dir[p]; ok {
			dirs[p] = d
		}
	}
	b, err := json.Marshal(record{Boot: r.boot, Paths: paths, Dirs: dirs})
	if err != nil {
		return err
	}
	tmp := path.Join(layout.StagingDir, layout.TempPrefix+id)
	err = r.create(tmp, b)
	if err == nil {
		err = r.root.Rename(tmp, path.Join(layout.StagingDir, id))
	}
	if err != nil {
		_ = r.root.Remove(tmp)
		return fmt.Errorf("staging record of volume %s: %w", id, err)
	}
	return nil
}

// create writes a new file (O_EXCL: never through a symlink planted at its
// name), replacing a leftover one.
func (r *Records) create(name string, b []byte) error {
	f, err := r.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		if err = r.root.Remove(name); err == nil {
			f, err = r.root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		}
	}
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	return errors.Join(err, f.Close())
}
