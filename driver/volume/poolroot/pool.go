// Package poolroot is a configured pool as found on this node: where it
// lives, the marker a ROOT/PATH pool's root must carry (and the copy the
// state dir recorded), its health (marker present, disks mounted or
// present, capacity enforced where required), its filesystem type, and the
// read-only inspection that `localdisk check` reports. It holds no volume
// records: the Manager (driver/volume) says whether records point into a
// pool and sets up its quotas.
package poolroot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
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
	// Lacking).
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

// VolumePath is the canonical path of a volume's directory, for comparisons
// with the mount table only (file operations go through open handles).
func (p *Pool) VolumePath(id string) string {
	if p.Kind.Directory() {
		return filepath.Join(p.Dir, dataDir, volumesDir, id)
	}
	if d := p.Disk(id); d != nil {
		return d.Path
	}
	return ""
}

// Open opens the pool's data directory after checking its marker, so that an
// unmounted or swapped disk is never written to.
func (p *Pool) Open() (*os.Root, error) {
	if p.markerID() == "" {
		return nil, fmt.Errorf("%w: pool %q was not initialised", capacity.ErrUnhealthy, p.Name)
	}
	r, err := os.OpenRoot(filepath.Join(p.Dir, dataDir))
	if err != nil {
		return nil, fmt.Errorf("%w: pool %q: %v (is its disk mounted?)", capacity.ErrUnhealthy, p.Name, err)
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
			return nil, fmt.Errorf("%w: pool %q: %v", capacity.ErrUnhealthy, p.Name, err)
		}
	}
	return r, nil
}

// Check fails with capacity.ErrUnhealthy (ErrUnhealthy) unless the volume's pool (ROOT/PATH) or disk
// (MOUNT) is present and the recorded one.
func (p *Pool) Check(id string) error {
	if p.Kind.Directory() {
		return p.markerPresent()
	}
	d := p.Disk(id)
	if d != nil && d.IsDevice() {
		if err := disk.BlockDevice(d.Device); err != nil {
			return fmt.Errorf("%w: the device of volume %s: %v", capacity.ErrUnhealthy, id, err)
		}
		return nil
	}
	if d == nil || !DiskMounted(d) {
		return fmt.Errorf("%w: the disk of volume %s is not mounted", capacity.ErrUnhealthy, id)
	}
	return nil
}

// Healthy reports whether the pool can serve: its marker is the recorded one
// and its capacity enforced where it says `quota: required` (ROOT/PATH), or
// at least one of its disks is mounted (MOUNT).
func (p *Pool) Healthy() bool {
	if p.Kind.Directory() {
		return p.Check("") == nil && p.QuotaUnmet() == nil
	}
	for _, d := range p.Disks {
		if DiskUsable(d) {
			return true
		}
	}
	return false
}

// VolumeContext is the volume_context of the pool's volumes: one map,
// shared by them and read-only.
func (p *Pool) VolumeContext() map[string]string { return p.context }

// LastHealthy is the verdict of the last health check (SetHealth); a new
// pool is presumed healthy.
func (p *Pool) LastHealthy() bool { return p.healthy.Load() }

// SetHealth records the verdict of a health check and returns the one it
// replaces, so that a change is logged once.
func (p *Pool) SetHealth(healthy, absent bool) (wasHealthy, wasAbsent bool) {
	return p.healthy.Swap(healthy), p.absent.Swap(absent)
}

// Present is false for an optional pool that the last health check found
// absent from this node: its path does not exist, or none of its disks is
// there, and no volume was made in it. Such a pool is not Healthy either,
// but nothing is wrong with the node.
func (p *Pool) Present() bool { return !p.absent.Load() }

// Lacking reports whether an optional pool is absent from this node: its
// path (ROOT/PATH) does not exist or none of its disks is present (MOUNT),
// and no volume record points into it (hasRecords, asked last; a pool that
// held volumes and lost its disk is unhealthy, optional or not).
func (p *Pool) Lacking(hasRecords func() bool) bool {
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
			} else if DiskMounted(d) {
				return false
			}
		}
	}
	return !hasRecords()
}

// DiskMounted reports whether a MOUNT disk's root is a mount point (its
// device differs from its parent's), so that an unmounted disk's empty
// directory on the root filesystem is never handed out or wiped.
func DiskMounted(d *pool.Disk) bool { return disk.MountRoot(d.Path) }

// New makes a configured pool; Refresh then finds it on this node.
func New(spec pool.Spec) (*Pool, error) {
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
		return healthyAtFirst(&Pool{Pool: capacity.NewPool(pool.New(spec, size, nil), CanonicalDir(spec.Path))}), nil
	}
	var disks []*pool.Disk
	for _, ds := range spec.Disks {
		d := &pool.Disk{ID: layout.DiskID(spec.Name, ds.Source()), Device: ds.Device, FSType: ds.FSType, MkfsOptions: ds.MkfsOptions}
		if !d.IsDevice() {
			d.Path = CanonicalDir(ds.Path)
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

func CanonicalDir(p string) string {
	if dir, err := filepath.EvalSymlinks(p); err == nil {
		return dir
	}
	return p
}

// Refresh finds the pool on this node and reports whether it is healthy:
// for ROOT/PATH it checks (or, on first use, writes) the marker, makes the
// pool's directories and measures an unset capacity; for MOUNT it measures
// the disks that are mounted. A pool that cannot be verified stays
// unhealthy, and is never re-initialised over existing records. It is
// called at start-up and by the health watch, so a disk mounted late is
// taken into service without a restart. stateRoot is the state dir (its
// pools/ holds the recorded markers), hasRecords says whether a volume
// record points into the pool, and setupQuota sets up the enforcement of
// capacities in the pool's opened data directory.
func (p *Pool) Refresh(stateRoot *os.Root, hasRecords func() bool, setupQuota func(root *os.Root) error) (bool, error) {
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
			if !DiskMounted(d) {
				continue
			}
			healthy = true
			var st unix.Statfs_t
			if d.Size() == 0 && unix.Statfs(d.Path, &st) == nil {
				p.SetDiskSize(d, int64(st.Blocks)*st.Bsize)
			}
		}
		if !healthy {
			return false, fmt.Errorf("%w: pool %q: none of its disks is present", capacity.ErrUnhealthy, p.Name)
		}
		return true, nil
	}
	if p.markerID() == "" {
		id, err := adoptMarker(stateRoot, p.Spec, p.Dir, hasRecords())
		if err != nil {
			return false, fmt.Errorf("%w: pool %q: %v", capacity.ErrUnhealthy, p.Name, err)
		}
		p.marker.Store(id)
	}
	root, err := p.Open()
	if err != nil {
		return false, err
	}
	defer root.Close()
	for _, d := range []string{volumesDir, trashDir} {
		if err := root.Mkdir(d, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return false, fmt.Errorf("pool %q: %w", p.Name, err)
		}
	}
	if err := setupQuota(root); err != nil {
		return false, err
	}
	if d, err := root.Open("."); err == nil {
		p.LearnFSType(d)
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

// DiskUsable reports whether a MOUNT disk can be handed out now: it was
// measured and is mounted (or, a device disk, present).
func DiskUsable(d *pool.Disk) bool {
	if d.IsDevice() {
		return disk.Usable(d.Device, d.Size())
	}
	return d.Size() > 0 && DiskMounted(d)
}

// BlockUsable reports whether a disk can be handed out as a raw block volume.
func BlockUsable(d *pool.Disk) bool { return d.IsDevice() && disk.Usable(d.Device, d.Size()) }

// QuotaUnmet fails with capacity.ErrUnhealthy when the pool says `quota: required`
// and its capacity is not enforced: it must hand out nothing then.
func (p *Pool) QuotaUnmet() error {
	if p.Spec.Quota == pool.QuotaRequired && p.Enforcement() == "" {
		return fmt.Errorf("%w: pool %q: quota: required, but its capacity is not enforced", capacity.ErrUnhealthy, p.Name)
	}
	return nil
}

// FSType is the type of the filesystem a ROOT or PATH pool lives on, as the
// mount table names it (ext4, xfs, btrfs, tmpfs, ...): the only fs_type its
// directory volumes are confirmed with. "" until the pool has been found
// healthy, or when the mount table did not tell.
func (p *Pool) FSType() string {
	t, _ := p.fsType.Load().(string)
	return t
}

// LearnFSType records the pool's filesystem type the first time it is
// found healthy (a disk swapped for another fails the pool's marker check
// first).
func (p *Pool) LearnFSType(dir *os.File) {
	if p.FSType() != "" {
		return
	}
	if t := disk.FSTypeOf(dir, p.Dir); t != "" {
		p.fsType.Store(t)
	}
}

// List opens a healthy directory pool and lists one of its directories; the
// caller closes the root, which is nil when the pool cannot be read.
func (p *Pool) List(dir string) (*os.Root, []fs.DirEntry) {
	if !p.Kind.Directory() {
		return nil, nil
	}
	root, err := p.Open()
	if err != nil {
		return nil, nil
	}
	entries, err := fs.ReadDir(root.FS(), dir)
	if err != nil {
		root.Close()
		return nil, nil
	}
	return root, entries
}
