package node

import (
	"context"
	"errors"
	"io/fs"
	"os"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"

	"github.com/localdisk-csi/localdisk/driver/csiutil"
	"github.com/localdisk-csi/localdisk/driver/failpoint"
	"github.com/localdisk-csi/localdisk/driver/mounter"
	"github.com/localdisk-csi/localdisk/driver/volume"
)

// stageDevice stages a device disk: for mount access its filesystem is
// mounted at the staging path, formatted first only if the device is blank
// (no filesystem, no partition table); for block access nothing is mounted,
// the device is only checked to be the recorded one.
func (s *Server) stageDevice(ctx context.Context, v *volume.Volume, staging string, c *csi.VolumeCapability) error {
	dev, err := s.Volumes.DevicePath(v)
	if err != nil {
		return csiutil.ToStatus(err)
	}
	if csiutil.IsBlock(c) {
		return nil
	}
	t, src, err := s.snapshot(v, false)
	if err != nil {
		return err
	}
	if done, err := mountedHere(t, staging, "staging_target_path", v.ID, src, nil); err != nil {
		return err
	} else if done { // a retry: finish what the first call may not have
		if err := s.Volumes.RecordIdentity(ctx, v, dev); err != nil {
			return csiutil.ToStatus(err)
		}
		return s.deviceGroup(staging, c)
	}
	if err := makeDir(staging); err != nil {
		return err
	}
	d := v.Pool.Disk(v.ID)
	if err := mounter.FormatAndMount(dev, staging, d.FSType, d.MkfsOptions); err != nil {
		return csiutil.Errorf(codes.FailedPrecondition, "stage volume %s: %v", v.ID, err)
	}
	failpoint.Inject(failpoint.StageMounted)
	if err := s.Volumes.RecordIdentity(ctx, v, dev); err != nil {
		return csiutil.ToStatus(err)
	}
	return s.deviceGroup(staging, c)
}

// deviceGroup applies a volume_mount_group to a device volume's root, the
// root of its mounted filesystem at the staging path.
func (s *Server) deviceGroup(staging string, c *csi.VolumeCapability) error {
	if c.GetMount().GetVolumeMountGroup() == "" {
		return nil
	}
	dir, err := os.OpenFile(staging, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return csiutil.Errorf(codes.Internal, "%v", err)
	}
	defer dir.Close()
	return applyMountGroup(dir, c)
}

// publishBlock bind-mounts a device volume's device node on the target, a
// file it creates; read-only when asked.
func (s *Server) publishBlock(v *volume.Volume, target string, ro bool, c *csi.VolumeCapability) error {
	dev, err := s.Volumes.DevicePath(v)
	if err != nil {
		return csiutil.ToStatus(err)
	}
	t, src, err := s.snapshot(v, true)
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
			return csiutil.Errorf(codes.FailedPrecondition, "volume %s is published at %s with readonly=%v; a raw device cannot be both", v.ID, u.Mountpoint, !ro)
		}
	}
	if err := makeFile(target); err != nil {
		return err
	}
	// A read-only mount does not stop writes to a device node: the device
	// itself is made read-only (BLKROSET) while it is published read-only.
	if err := setDeviceRO(dev, ro); err != nil {
		return csiutil.Errorf(codes.Internal, "publish volume %s: %v", v.ID, err)
	}
	if err := mounter.BindPath(dev, target, ro); err != nil {
		return csiutil.Errorf(codes.Internal, "publish volume %s: %v", v.ID, err)
	}
	failpoint.Inject(failpoint.PublishMounted)
	return nil
}

// setDeviceRO sets or clears a block device's read-only flag (BLKROSET).
func setDeviceRO(dev string, ro bool) error {
	f, err := os.OpenFile(dev, os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	flag := 0
	if ro {
		flag = 1
	}
	return unix.IoctlSetPointerInt(int(f.Fd()), unix.BLKROSET, flag)
}

// releaseBlock makes a raw block volume's device writable again once no
// read-only publish of it is left (after an unpublish).
func (s *Server) releaseBlock(id string) error {
	v, err := s.Volumes.Lookup(id)
	if err != nil || !v.Device() || !v.Block {
		return nil
	}
	dev, err := s.Volumes.DevicePath(v)
	if err != nil {
		return nil
	}
	t, src, err := s.snapshot(v, true)
	if err != nil {
		return err
	}
	for _, u := range t.Uses(dev, src) {
		if mounter.ReadOnly(u) {
			return nil
		}
	}
	if err := setDeviceRO(dev, false); err != nil {
		return csiutil.Errorf(codes.Internal, "make %s writable again: %v", dev, err)
	}
	return nil
}

// makeFile makes a block volume's target file, accepting an existing
// regular file but never a symlink or a directory.
func makeFile(p string) error {
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err == nil {
		f.Close()
		return nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return csiutil.Errorf(codes.Internal, "create %s: %v", p, err)
	}
	fi, err := os.Lstat(p)
	if err != nil {
		return csiutil.Errorf(codes.Internal, "%v", err)
	}
	if !fi.Mode().IsRegular() {
		return csiutil.Errorf(codes.FailedPrecondition, "%s exists and is not a regular file (%s)", p, fi.Mode().Type())
	}
	return nil
}
