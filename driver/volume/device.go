package volume

import (
	"context"
	"fmt"
	"maps"

	"golang.org/x/sys/unix"

	"github.com/localdisk-csi/localdisk/driver/disk"
	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/mounter"
	"github.com/localdisk-csi/localdisk/driver/pool"
	"github.com/localdisk-csi/localdisk/driver/volume/poolroot"
)

// deviceOf finds the configured device of a device disk by identity: the
// one the volume's record names when it has an identity (whatever its /dev
// name is now), else the disk's own configured device, provided no other
// volume's disk is there. ErrUnhealthy when the disk is missing or not the
// recorded one: a renamed device never hands one volume another's disk.
// Identities come from the Manager's cache; a failure found with them is
// checked again with identities read anew before it is reported (see
// disk.Identities).
func (m *Manager) deviceOf(p *Pool, d *pool.Disk) (string, map[string]string, error) {
	dev, id, err := m.findDevice(p, d, m.ids.Get)
	if err != nil {
		dev, id, err = m.findDevice(p, d, m.ids.Refresh)
	}
	return dev, id, err
}

func (m *Manager) findDevice(p *Pool, d *pool.Disk, identity func(string) (map[string]string, error)) (string, map[string]string, error) {
	rec := m.recs.ByDisk(p.Name, d.ID)
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
	for _, r := range m.recs.MountRecords() { // only MOUNT records have an identity
		if layout.DiskOf(r.ID) != d.ID && r.Pool == p.Name && len(r.Identity) > 0 && disk.SameDisk(r.Identity, id) {
			return "", nil, fmt.Errorf("%w: %s now holds the disk of volume %s", ErrUnhealthy, d.Device, r.ID)
		}
	}
	return poolroot.CanonicalDir(d.Device), id, nil
}

// diskIdentity is what a claim records of a free disk: its device's
// identity (see deviceOf), or that of the filesystem mounted at its path.
func (m *Manager) diskIdentity(p *Pool, d *pool.Disk) (map[string]string, error) {
	if !d.IsDevice() {
		return m.ids.Mounted(d.Path), nil
	}
	_, id, err := m.deviceOf(p, d)
	return id, err
}

// DevicePath resolves a device volume's block device (see deviceOf).
func (m *Manager) DevicePath(v *Volume) (string, error) {
	d := v.Pool.Disk(v.ID)
	if d == nil || !d.IsDevice() {
		return "", fmt.Errorf("%w: volume %s is not on a device disk", ErrInvalid, v.ID)
	}
	dev, _, err := m.deviceOf(v.Pool, d)
	return dev, err
}

// RecordIdentity stores a device volume's current identity, read anew
// (after formatting, its filesystem UUID joins it).
func (m *Manager) RecordIdentity(ctx context.Context, v *Volume, dev string) error {
	id, err := m.ids.Refresh(dev)
	if err != nil {
		return err
	}
	r := m.recs.Record(v.ID)
	if r == nil || maps.Equal(r.Identity, id) {
		return nil
	}
	r.Identity = id
	return m.recs.Put(r)
}

// Source is what a mount of the volume shows: for a directory volume, its
// directory; for a device volume, the device's filesystem root (mount) or
// the device node (block).
func (m *Manager) Source(t mounter.Table, v *Volume, block bool) (mounter.Source, error) {
	d := v.Pool.Disk(v.ID)
	if d == nil || !d.IsDevice() {
		return t.Locate(v.Path())
	}
	dev, err := m.DevicePath(v)
	if err != nil {
		return mounter.Source{}, err
	}
	if block {
		return t.Locate(dev)
	}
	rdev, err := disk.DeviceNumber(dev)
	if err != nil {
		return mounter.Source{}, err
	}
	return mounter.Source{Major: int(unix.Major(rdev)), Minor: int(unix.Minor(rdev)), Root: "/"}, nil
}

// checkMountedDisk fails with ErrUnhealthy when a claimed mounted disk's
// filesystem is not the one recorded at its claim (another disk was
// mounted at its root). A mismatch found with a cached identity is read
// again before it is reported.
func (m *Manager) checkMountedDisk(id, dir string) error {
	r := m.recs.Record(id)
	if r == nil || len(r.Identity) == 0 {
		return nil
	}
	if now := m.ids.Mounted(dir); !disk.SameDisk(r.Identity, now) {
		if now = disk.MountedIdentity(dir); !disk.SameDisk(r.Identity, now) {
			return fmt.Errorf("%w: %s holds another filesystem (%v) than volume %s's (%v)", ErrDiskReplaced, dir, now, id, r.Identity)
		}
	}
	return nil
}
