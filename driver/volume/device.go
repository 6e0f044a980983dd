package volume

import (
	"context"
	"fmt"
	"maps"

	"golang.org/x/sys/unix"

	"github.com/localdisk-csi/localdisk/driver/disk"
	"github.com/localdisk-csi/localdisk/driver/mounter"
)

// DevicePath resolves a device volume's block device (see devfind.Finder.Device).
func (m *Manager) DevicePath(v *Volume) (string, error) {
	d := v.Pool.Disk(v.ID)
	if d == nil || !d.IsDevice() {
		return "", fmt.Errorf("%w: volume %s is not on a device disk", ErrInvalid, v.ID)
	}
	dev, _, err := m.devs.Device(v.Pool, d)
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
