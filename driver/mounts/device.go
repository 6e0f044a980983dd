package mounts

import (
	"context"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/localdisk-csi/localdisk/driver/failpoint"
	"github.com/localdisk-csi/localdisk/driver/mounter"
	"github.com/localdisk-csi/localdisk/driver/volume"
)

// stageDevice stages a device disk: for mount access its filesystem is
// mounted at the staging path, formatted first only if the device is blank
// (no filesystem, no partition table); for block access nothing is mounted,
// the device is only checked to be the recorded one.
func (m *Mounts) stageDevice(ctx context.Context, v *volume.Volume, staging string, c Capability) error {
	dev, err := m.vols.DevicePath(v)
	if err != nil {
		return err
	}
	if c.Block {
		return nil
	}
	t, src, err := m.snapshot(v, false)
	if err != nil {
		return err
	}
	if done, err := mountedHere(t, staging, "staging_target_path", v.ID, src, nil); err != nil {
		return err
	} else if done { // a retry: finish what the first call may not have
		if err := m.vols.RecordIdentity(ctx, v, dev); err != nil {
			return err
		}
		return deviceGroup(staging, c.MountGroup)
	}
	if err := makeDir(staging); err != nil {
		return err
	}
	d := v.Pool.Disk(v.ID)
	if err := m.m.FormatAndMount(dev, staging, d.FSType, d.MkfsOptions); err != nil {
		return fmt.Errorf("%w: stage volume %s: %v", ErrDeviceMount, v.ID, err)
	}
	failpoint.Inject(failpoint.StageMounted)
	if err := m.vols.RecordIdentity(ctx, v, dev); err != nil {
		return err
	}
	return deviceGroup(staging, c.MountGroup)
}

// deviceGroup applies a volume_mount_group to a device volume's root, the
// root of its mounted filesystem at the staging path.
func deviceGroup(staging, group string) error {
	if group == "" {
		return nil
	}
	dir, err := os.OpenFile(staging, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return fmt.Errorf("%v", err)
	}
	defer dir.Close()
	return applyMountGroup(dir, group)
}

// publishBlock bind-mounts a device volume's device node on the target, a
// file it creates; read-only when asked.
func (m *Mounts) publishBlock(v *volume.Volume, target string, ro bool, c Capability) error {
	dev, err := m.vols.DevicePath(v)
	if err != nil {
		return err
	}
	t, src, err := m.snapshot(v, true)
	if err != nil {
		return err
	}
	if done, err := mountedHere(t, target, "target_path", v.ID, src, &ro); done || err != nil {
		return err
	}
	if err := singleWriter(t, dev, src, c, "", target); err != nil {
		return err
	}
	for _, u := range t.Uses(dev, src) { // one device is read-only for all or for none
		if mounter.ReadOnly(u) != ro {
			return fmt.Errorf("%w: volume %s is published at %s with readonly=%v; a raw device cannot be both", ErrMixedReadOnly, v.ID, u.Mountpoint, !ro)
		}
	}
	if err := makeFile(target); err != nil {
		return err
	}
	// A read-only mount does not stop writes to a device node: the device
	// itself is made read-only (BLKROSET) while it is published read-only.
	if err := m.m.SetDeviceReadOnly(dev, ro); err != nil {
		return fmt.Errorf("publish volume %s: %v", v.ID, err)
	}
	if err := m.m.BindPath(dev, target, ro); err != nil {
		return fmt.Errorf("publish volume %s: %v", v.ID, err)
	}
	failpoint.Inject(failpoint.PublishMounted)
	return nil
}

// releaseBlock makes a raw block volume's device writable again once no
// read-only publish of it is left (after an unpublish).
func (m *Mounts) releaseBlock(id string) error {
	v, err := m.vols.Lookup(id)
	if err != nil || !v.Device() || !v.Block {
		return nil
	}
	dev, err := m.vols.DevicePath(v)
	if err != nil {
		return nil
	}
	t, src, err := m.snapshot(v, true)
	if err != nil {
		return err
	}
	for _, u := range t.Uses(dev, src) {
		if mounter.ReadOnly(u) {
			return nil
		}
	}
	if err := m.m.SetDeviceReadOnly(dev, false); err != nil {
		return fmt.Errorf("make %s writable again: %v", dev, err)
	}
	return nil
}
