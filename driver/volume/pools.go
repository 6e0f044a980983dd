package volume

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/localdisk-csi/localdisk/driver/capacity"
	"github.com/localdisk-csi/localdisk/driver/disk"
	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/pool"
)

// Layout of a ROOT or PATH pool's root directory (driver/layout's names).
const (
	dataDir    = layout.DataDir    // <root>/localdisk, mode 0700
	markerFile = layout.MarkerFile // <root>/localdisk/pool.json
	volumesDir = layout.VolumesDir // <root>/localdisk/volumes/<id>
	trashDir   = layout.TrashDir   // <root>/localdisk/trash/<id>
	poolsDir   = layout.PoolsDir   // <state-dir>/pools/<name>.json
)

// marker is what a pool root carries, and what the state dir recorded for it.
type marker struct {
	Pool string `json:"pool"`
	ID   string `json:"id"`
}

// Pool is a configured pool with where it lives on this node. Its
// capacity side (capacity.Pool: its canonical root Dir, how it enforces
// capacities, what its volumes use) is embedded with the configured pool.
type Pool struct {
	*capacity.Pool
	// marker is the marker ID this pool must carry (ROOT/PATH), "" until
	// known.
	marker atomic.Value
	// healthy is the last health verdict, to log transitions once; absent
	// says an unhealthy optional pool is merely not on this node (see
	// lacking).
	healthy atomic.Bool
	absent  atomic.Bool
	// fsType is the pool's filesystem type (FSType).
	fsType atomic.Value
	// stamp is the markerStamp of the marker last verified.
	stamp atomic.Value
	// context is the volume_context of its volumes.
	context map[string]string
}

func (p *Pool) markerID() string {
	id, _ := p.marker.Load().(string)
	return id
}

// volumePath is the canonical path of a volume's directory, for comparisons
// with the mount table only (file operations go through open handles).
func (p *Pool) volumePath(id string) string {
	if p.Kind.Directory() {
		return filepath.Join(p.Dir, dataDir, volumesDir, id)
	}
	if d := p.Disk(id); d != nil {
		return d.Path
	}
	return ""
}

// open opens the pool's data directory after checking its marker, so that an
// unmounted or swapped disk is never written to.
func (p *Pool) open() (*os.Root, error) {
	if p.markerID() == "" {
		return nil, fmt.Errorf("%w: pool %q was not initialised", ErrUnhealthy, p.Name)
	}
	r, err := os.OpenRoot(filepath.Join(p.Dir, dataDir))
	if err != nil {
		return nil, fmt.Errorf("%w: pool %q: %v (is its disk mounted?)", ErrUnhealthy, p.Name, err)
	}
	var st unix.Stat_t
	if fi, err := r.Lstat(markerFile); err == nil {
		if sys, ok := fi.Sys().(*syscall.Stat_t); ok {
			st = unix.Stat_t{Dev: sys.Dev, Ino: sys.Ino, Size: sys.Size, Mtim: unix.Timespec(sys.Mtim)}
		}
	}
	if !p.stampOK(st) {
		if err := p.readMarker(r, st); err != nil {
			r.Close()
			return nil, fmt.Errorf("%w: pool %q: %v", ErrUnhealthy, p.Name, err)
		}
	}
	return r, nil
}

// markerStamp identifies the marker file last found correct, so that the
// checks before every operation cost one stat instead of a read and parse.
type markerStamp struct {
	dev, ino    uint64
	size, mtime int64
}

func stampOf(st unix.Stat_t) markerStamp {
	return markerStamp{dev: st.Dev, ino: st.Ino, size: st.Size, mtime: st.Mtim.Nano()}
}

func (p *Pool) stampOK(st unix.Stat_t) bool {
	s, _ := p.stamp.Load().(markerStamp)
	return s != markerStamp{} && s == stampOf(st)
}

// readMarker reads and checks the marker, remembering its stamp.
func (p *Pool) readMarker(r *os.Root, st unix.Stat_t) error {
	var m marker
	data, err := r.ReadFile(markerFile)
	if err == nil {
		err = json.Unmarshal(data, &m)
	}
	if err == nil && (m.ID != p.markerID() || m.Pool != p.Name) {
		err = fmt.Errorf("marker %s/%s is pool %q id %s, not the recorded %s", dataDir, markerFile, m.Pool, m.ID, p.markerID())
	}
	if err != nil {
		return err
	}
	if st.Ino != 0 {
		p.stamp.Store(stampOf(st))
	}
	return nil
}

// markerPresent is the cheap health check: one stat of the marker matching
// the stamp of the marker last verified; anything else reads it again.
func (p *Pool) markerPresent() error {
	var st unix.Stat_t
	if p.markerID() != "" && unix.Lstat(filepath.Join(p.Dir, dataDir, markerFile), &st) == nil && p.stampOK(st) {
		return nil
	}
	r, err := p.open()
	if err == nil {
		r.Close()
	}
	return err
}

// check fails with ErrUnhealthy unless the volume's pool (ROOT/PATH) or disk
// (MOUNT) is present and the recorded one.
func (p *Pool) check(id string) error {
	if p.Kind.Directory() {
		return p.markerPresent()
	}
	d := p.Disk(id)
	if d != nil && d.IsDevice() {
		if err := disk.BlockDevice(d.Device); err != nil {
			return fmt.Errorf("%w: the device of volume %s: %v", ErrUnhealthy, id, err)
		}
		return nil
	}
	if d == nil || !diskMounted(d) {
		return fmt.Errorf("%w: the disk of volume %s is not mounted", ErrUnhealthy, id)
	}
	return nil
}

// Healthy reports whether the pool can serve: its marker is the recorded one
// and its capacity enforced where it says `quota: required` (ROOT/PATH), or
// at least one of its disks is mounted (MOUNT).
func (p *Pool) Healthy() bool {
	if p.Kind.Directory() {
		return p.check("") == nil && p.quotaUnmet() == nil
	}
	for _, d := range p.Disks {
		if diskUsable(d) {
			return true
		}
	}
	return false
}

// Present is false for an optional pool that the last health check found
// absent from this node: its path does not exist, or none of its disks is
// there, and no volume was made in it. Such a pool is not Healthy either,
// but nothing is wrong with the node.
func (p *Pool) Present() bool { return !p.absent.Load() }

// lacking reports whether an optional pool is absent from this node: its
// path (ROOT/PATH) does not exist or none of its disks is present (MOUNT),
// and no volume record points into it (a pool that held volumes and lost
// its disk is unhealthy, optional or not).
func (m *Manager) lacking(p *Pool) bool {
	if !p.Spec.Optional {
		return false
	}
	if p.Kind.Directory() {
		if _, err := os.Lstat(p.Spec.Path); !errors.Is(err, fs.ErrNotExist) {
			return false
		}
	} else {
		for _, d := range p.Disks {
			if d.IsDevice() {
				if disk.BlockDevice(d.Device) == nil {
					return false
				}
			} else if diskMounted(d) {
				return false
			}
		}
	}
	return !m.recs.HasPool(p.Name)
}

// diskMounted reports whether a MOUNT disk's root is a mount point (its
// device differs from its parent's), so that an unmounted disk's empty
// directory on the root filesystem is never handed out or wiped.
func diskMounted(d *pool.Disk) bool { return disk.MountRoot(d.Path) }

// newPool makes a configured pool; refresh then finds it on this node.
func newPool(spec pool.Spec) (*Pool, error) {
	var size int64 // a percentage, or the default, is measured by refresh
	if spec.Capacity != nil && !spec.Capacity.IsPercent() {
		size = int64(spec.Capacity.Bytes)
	}
	if spec.Kind.Directory() {
		if spec.Kind == pool.Root {
			if err := os.MkdirAll(spec.Path, 0o700); err != nil {
				return nil, fmt.Errorf("pool %q: %w", spec.Name, err)
			}
		}
		return healthyAtFirst(&Pool{Pool: capacity.NewPool(pool.New(spec, size, nil), canonicalDir(spec.Path))}), nil
	}
	var disks []*pool.Disk
	for _, ds := range spec.Disks {
		d := &pool.Disk{ID: layout.DiskID(spec.Name, ds.Source()), Device: ds.Device, FSType: ds.FSType, MkfsOptions: ds.MkfsOptions}
		if !d.IsDevice() {
			d.Path = canonicalDir(ds.Path)
		}
		disks = append(disks, d)
	}
	return healthyAtFirst(&Pool{Pool: capacity.NewPool(pool.New(spec, 0, disks), "")}), nil
}

// healthyAtFirst presumes a new pool healthy, so that the first check logs
// an unhealthy one (and only that), and sets its volume_context.
func healthyAtFirst(p *Pool) *Pool {
	p.healthy.Store(true)
	p.context = layout.VolumeContext(p.Name, string(p.Kind))
	return p
}

func canonicalDir(p string) string {
	if dir, err := filepath.EvalSymlinks(p); err == nil {
		return dir
	}
	return p
}

// refresh finds the pool on this node and reports whether it is healthy:
// for ROOT/PATH it checks (or, on first use, writes) the marker, makes the
// pool's directories and measures an unset capacity; for MOUNT it measures
// the disks that are mounted. A pool that cannot be verified stays
// unhealthy, and is never re-initialised over existing records. It is
// called at start-up and by the health watch, so a disk mounted late is
// taken into service without a restart.
func (m *Manager) refresh(p *Pool) (bool, error) {
	if !p.Kind.Directory() {
		healthy := false
		for _, d := range p.Disks {
			if d.IsDevice() {
				if disk.BlockDevice(d.Device) != nil {
					continue
				}
				if d.Size() == 0 {
					if size, err := disk.Size(d.Device); err == nil {
						p.SetDiskSize(d, size)
					}
				}
				healthy = true
				continue
			}
			if !diskMounted(d) {
				continue
			}
			healthy = true
			var st unix.Statfs_t
			if d.Size() == 0 && unix.Statfs(d.Path, &st) == nil {
				p.SetDiskSize(d, int64(st.Blocks)*st.Bsize)
			}
		}
		if !healthy {
			return false, fmt.Errorf("%w: pool %q: none of its disks is present", ErrUnhealthy, p.Name)
		}
		return true, nil
	}
	if p.markerID() == "" {
		id, err := m.adoptMarker(p.Spec, p.Dir, m.recs.HasPool(p.Name))
		if err != nil {
			return false, fmt.Errorf("%w: pool %q: %v", ErrUnhealthy, p.Name, err)
		}
		p.marker.Store(id)
	}
	root, err := p.open()
	if err != nil {
		return false, err
	}
	defer root.Close()
	for _, d := range []string{volumesDir, trashDir} {
		if err := root.Mkdir(d, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return false, fmt.Errorf("pool %q: %w", p.Name, err)
		}
	}
	if err := m.quotas.Setup(p.Pool, root, m.log, m.projects); err != nil {
		return false, err
	}
	if d, err := root.Open("."); err == nil {
		p.learnFSType(d)
		d.Close()
	}
	if (p.Spec.Capacity == nil || p.Spec.Capacity.IsPercent()) && p.Capacity() == 0 {
		var st unix.Statfs_t
		if err := unix.Statfs(p.Dir, &st); err != nil {
			return false, fmt.Errorf("pool %q: statfs: %w", p.Name, err)
		}
		p.SetCapacity(p.Spec.CapacityOf(int64(st.Blocks) * st.Bsize))
	}
	return true, nil
}

// adoptMarker returns the marker ID the pool must carry. The state dir's
// copy wins; a pool seen for the first time is initialised only when no
// record points into it.
func (m *Manager) adoptMarker(spec pool.Spec, dir string, hasRecords bool) (string, error) {
	found, recorded, fresh, err := findMarker(m.stateRoot, spec, dir, func() bool { return hasRecords })
	if err != nil || recorded {
		return found.ID, err // open() verifies the disk carries a recorded one
	}
	if fresh {
		pr, err := os.OpenRoot(dir)
		if err != nil {
			return "", err
		}
		defer pr.Close()
		if err := pr.Mkdir(dataDir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return "", err
		}
		blob, _ := json.Marshal(found)
		if err := writeFileSync(pr, path.Join(dataDir, markerFile), blob); err != nil {
			return "", err
		}
	}
	blob, _ := json.Marshal(found)
	if err := writeFileSync(m.stateRoot, filepath.Join(poolsDir, layout.PoolFile(spec.Name)), blob); err != nil {
		return "", err
	}
	return found.ID, nil
}

// findMarker is what adoptMarker decides, without writing anything: the
// marker recorded in the state dir (recorded; stateRoot may be nil: no
// state dir yet), else the one on the pool's disk, else a new one for a
// pool that no record points into (fresh: adoptMarker writes it).
func findMarker(stateRoot *os.Root, spec pool.Spec, dir string, hasRecords func() bool) (found marker, recorded, fresh bool, err error) {
	if stateRoot != nil {
		data, err := stateRoot.ReadFile(filepath.Join(poolsDir, layout.PoolFile(spec.Name)))
		switch {
		case err == nil:
			if err := json.Unmarshal(data, &found); err != nil {
				return marker{}, false, false, fmt.Errorf("state %s/%s.json: %w", poolsDir, spec.Name, err)
			}
			return found, true, false, nil
		case !errors.Is(err, fs.ErrNotExist):
			return marker{}, false, false, err
		}
	}
	pr, err := os.OpenRoot(dir)
	if err != nil {
		return marker{}, false, false, err
	}
	defer pr.Close()
	markerPath := path.Join(dataDir, markerFile)
	onDisk, err := pr.ReadFile(markerPath)
	switch {
	case err == nil:
		if err := json.Unmarshal(onDisk, &found); err != nil || found.Pool != spec.Name || found.ID == "" {
			return marker{}, false, false, fmt.Errorf("marker %s belongs to another pool or is corrupt", filepath.Join(dir, markerPath))
		}
		return found, false, false, nil
	case !errors.Is(err, fs.ErrNotExist):
		return marker{}, false, false, err
	case hasRecords():
		return marker{}, false, false, errors.New("marker missing while volume records point into the pool (disk not mounted?)")
	}
	return marker{Pool: spec.Name, ID: randomID()}, false, true, nil
}

// writeFileSync writes name atomically and durably inside r.
func writeFileSync(r *os.Root, name string, data []byte) error {
	tmp := name + ".tmp"
	f, err := r.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = r.Rename(tmp, name)
	}
	if err != nil {
		r.Remove(tmp)
		return err
	}
	d, err := r.Open(path.Dir(name))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func randomID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// diskUsable reports whether a MOUNT disk can be handed out now: it was
// measured and is mounted (or, a device disk, present).
func diskUsable(d *pool.Disk) bool {
	if d.IsDevice() {
		return disk.Usable(d.Device, d.Size())
	}
	return d.Size() > 0 && diskMounted(d)
}

// blockUsable reports whether a disk can be handed out as a raw block volume.
func blockUsable(d *pool.Disk) bool { return d.IsDevice() && disk.Usable(d.Device, d.Size()) }

// quotaUnmet fails with ErrUnhealthy when the pool says `quota: required`
// and its capacity is not enforced: it must hand out nothing then.
func (p *Pool) quotaUnmet() error {
	if p.Spec.Quota == pool.QuotaRequired && p.Enforcement() == "" {
		return fmt.Errorf("%w: pool %q: quota: required, but its capacity is not enforced", ErrUnhealthy, p.Name)
	}
	return nil
}

// projects lists the project IDs the records hold (for a new project ID
// allocator: capacity.Quotas.Setup).
func (m *Manager) projects() []uint32 {
	recs := m.Records()
	out := make([]uint32, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.ProjectID)
	}
	return out
}

// FSType is the type of the filesystem a ROOT or PATH pool lives on, as the
// mount table names it (ext4, xfs, btrfs, tmpfs, ...): the only fs_type its
// directory volumes are confirmed with. "" until the pool has been found
// healthy, or when the mount table did not tell.
func (p *Pool) FSType() string {
	t, _ := p.fsType.Load().(string)
	return t
}

// learnFSType records the pool's filesystem type the first time it is
// found healthy (a disk swapped for another fails the pool's marker check
// first).
func (p *Pool) learnFSType(dir *os.File) {
	if p.FSType() != "" {
		return
	}
	if t := disk.FSTypeOf(dir, p.Dir); t != "" {
		p.fsType.Store(t)
	}
}
