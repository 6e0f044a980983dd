// Package devfind finds the disk of a MOUNT volume by identity: which
// configured device holds it now (whatever its /dev name), what a claim
// records of a free disk, and whether a mounted disk is still the one
// recorded. It reads the records through the index (volume/index) and the
// identities through the Manager's cache (disk.Identities).
package devfind

import (
	"fmt"

	"github.com/localdisk-csi/localdisk/driver/capacity"
	"github.com/localdisk-csi/localdisk/driver/disk"
	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/pool"
	"github.com/localdisk-csi/localdisk/driver/volume/index"
	"github.com/localdisk-csi/localdisk/driver/volume/poolroot"
)

// ErrUnhealthy is driver/capacity's (volume.ErrUnhealthy).
var ErrUnhealthy = capacity.ErrUnhealthy

// ErrDiskReplaced: another disk or filesystem is where the volume's was (an
// ErrUnhealthy); it is never used as the volume's (volume.ErrDiskReplaced).
var ErrDiskReplaced = fmt.Errorf("%w: disk replaced", ErrUnhealthy)

// Finder finds disks with the records of Recs and the identities of IDs.
type Finder struct {
	Recs *index.Index
	IDs  *disk.Identities
}

// Device finds the configured device of a device disk by identity: the
// one the volume's record names when it has an identity (whatever its /dev
// name is now), else the disk's own configured device, provided no other
// volume's disk is there. ErrUnhealthy when the disk is missing or not the
// recorded one: a renamed device never hands one volume another's disk.
// Identities come from the cache (IDs); a failure found with them is
// checked again with identities read anew before it is reported (see
// disk.Identities).
func (f Finder) Device(p *poolroot.Pool, d *pool.Disk) (string, map[string]string, error) {
	dev, id, err := f.find(p, d, f.IDs.Get)
	if err != nil {
		dev, id, err = f.find(p, d, f.IDs.Refresh)
	}
	return dev, id, err
}

func (f Finder) find(p *poolroot.Pool, d *pool.Disk, identity func(string) (map[string]string, error)) (string, map[string]string, error) {
	rec := f.Recs.ByDisk(p.Name, d.ID)
	if rec != nil && len(rec.Identity) > 0 {
		for _, o := range p.Disks {
			if !o.IsDevice() {
				continue
			}
			if id, err := identity(o.Device); err == nil && disk.SameDisk(rec.Identity, id) {
				return poolroot.CanonicalDir(o.Device), id, nil
			}
		}
		if _, err := identity(d.Device); err == nil {
			return "", nil, fmt.Errorf("%w: %s is not the disk of volume %s (%v), which is nowhere among the pool's devices", ErrDiskReplaced, d.Device, d.ID, rec.Identity)
		}
		return "", nil, fmt.Errorf("%w: the disk of volume %s (%v) is missing", ErrUnhealthy, d.ID, rec.Identity)
	}
	id, err := identity(d.Device)
	if err != nil {
		return "", nil, fmt.Errorf("%w: %v", ErrUnhealthy, err)
	}
	for _, r := range f.Recs.MountRecords() { // only MOUNT records have an identity
		if layout.DiskOf(r.ID) != d.ID && r.Pool == p.Name && len(r.Identity) > 0 && disk.SameDisk(r.Identity, id) {
			return "", nil, fmt.Errorf("%w: %s now holds the disk of volume %s", ErrUnhealthy, d.Device, r.ID)
		}
	}
	return poolroot.CanonicalDir(d.Device), id, nil
}

// Identity is what a claim records of a free disk: its device's
// identity (see Device), or that of the filesystem mounted at its path.
func (f Finder) Identity(p *poolroot.Pool, d *pool.Disk) (map[string]string, error) {
	if !d.IsDevice() {
		return f.IDs.Mounted(d.Path), nil
	}
	_, id, err := f.Device(p, d)
	return id, err
}

// CheckMounted fails with ErrUnhealthy when a claimed mounted disk's
// filesystem is not the one recorded at its claim (another disk was
// mounted at its root). A mismatch found with a cached identity is read
// again before it is reported.
func (f Finder) CheckMounted(id, dir string) error {
	r := f.Recs.Record(id)
	if r == nil || len(r.Identity) == 0 {
		return nil
	}
	if now := f.IDs.Mounted(dir); !disk.SameDisk(r.Identity, now) {
		if now = disk.MountedIdentity(dir); !disk.SameDisk(r.Identity, now) {
			return fmt.Errorf("%w: %s holds another filesystem (%v) than volume %s's (%v)", ErrDiskReplaced, dir, now, id, r.Identity)
		}
	}
	return nil
}
