package volume

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/mounter"
	"github.com/localdisk-csi/localdisk/driver/pool"
)

// Identity facets of a block device.
const (
	idWWN     = "wwn"     // the device's World Wide Name
	idSerial  = "serial"  // the device's serial number
	idFSUUID  = "fsUUID"  // the UUID of the filesystem on it
	idBacking = "backing" // a loop device's backing file
)

// deviceIdentity reads what identifies a device beyond its /dev name.
func deviceIdentity(dev string) (map[string]string, error) {
	rdev, err := blockDevice(dev)
	if err != nil {
		return nil, err
	}
	sys := fmt.Sprintf("/sys/dev/block/%d:%d/", unix.Major(rdev), unix.Minor(rdev))
	id := map[string]string{}
	read := func(key string, files ...string) {
		for _, f := range files {
			if b, err := os.ReadFile(sys + f); err == nil && strings.TrimSpace(string(b)) != "" {
				id[key] = strings.TrimSpace(string(b))
				return
			}
		}
	}
	read(idWWN, "device/wwid", "wwid", "device/wwn")
	read(idSerial, "device/serial", "serial")
	read(idBacking, "loop/backing_file")
	if u, err := fsUUID(dev); err == nil && u != "" {
		id[idFSUUID] = u
	}
	if len(id) == 0 {
		return nil, fmt.Errorf("device %s has no stable identity (no WWN, serial, filesystem UUID or loop backing file)", dev)
	}
	return id, nil
}

// sameDisk reports whether two identities name one disk: every facet both
// know agrees, and they share at least one.
func sameDisk(a, b map[string]string) bool {
	shared := false
	for k, v := range a {
		if w, ok := b[k]; ok {
			if v != w {
				return false
			}
			shared = true
		}
	}
	return shared
}

// blockDevice stats dev (following /dev/disk/by-* links) and returns its
// device number, failing unless it is a block device.
func blockDevice(dev string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(dev, &st); err != nil {
		return 0, fmt.Errorf("device %s: %w", dev, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return 0, fmt.Errorf("%s is not a block device", dev)
	}
	return st.Rdev, nil
}

// deviceSize is the size of a block device in bytes.
func deviceSize(dev string) (int64, error) {
	f, err := os.OpenFile(dev, os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var size uint64
	if err := ioctlGetSize(int(f.Fd()), &size); err != nil {
		return 0, fmt.Errorf("size of %s: %w", dev, err)
	}
	return int64(size), nil
}

// fsUUID is the UUID of the filesystem on dev ("" when there is none),
// probed by blkid(8) with an argument vector.
func fsUUID(dev string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "blkid", "-p", "-s", "UUID", "-o", "value", dev).Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 2 { // nothing found
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("blkid %s: %w", dev, err)
	}
	return strings.TrimSpace(string(out)), nil
}

// deviceOf finds the configured device of a device disk by identity: the
// one the volume's record names when it has an identity (whatever its /dev
// name is now), else the disk's own configured device, provided no other
// volume's disk is there. ErrUnhealthy when the disk is missing or not the
// recorded one: a renamed device never hands one volume another's disk.
func (m *Manager) deviceOf(p *Pool, d *pool.Disk) (string, map[string]string, error) {
	rec := m.diskRecord(p, d)
	if rec != nil && len(rec.Identity) > 0 {
		for _, o := range p.Disks {
			if !o.IsDevice() {
				continue
			}
			if id, err := deviceIdentity(o.Device); err == nil && sameDisk(rec.Identity, id) {
				return canonicalDir(o.Device), id, nil
			}
		}
		if _, err := deviceIdentity(d.Device); err == nil {
			return "", nil, fmt.Errorf("%w: %s is not the disk of volume %s (%v), which is nowhere among the pool's devices", ErrDiskReplaced, d.Device, d.ID, rec.Identity)
		}
		return "", nil, fmt.Errorf("%w: the disk of volume %s (%v) is missing", ErrUnhealthy, d.ID, rec.Identity)
	}
	id, err := deviceIdentity(d.Device)
	if err != nil {
		return "", nil, fmt.Errorf("%w: %v", ErrUnhealthy, err)
	}
	for _, r := range m.mountRecords() { // only MOUNT records have an identity
		if layout.DiskOf(r.ID) != d.ID && r.Pool == p.Name && len(r.Identity) > 0 && sameDisk(r.Identity, id) {
			return "", nil, fmt.Errorf("%w: %s now holds the disk of volume %s", ErrUnhealthy, d.Device, r.ID)
		}
	}
	return canonicalDir(d.Device), id, nil
}

// diskIdentity is what a claim records of a free disk: its device's
// identity (see deviceOf), or that of the filesystem mounted at its path.
func (m *Manager) diskIdentity(p *Pool, d *pool.Disk) (map[string]string, error) {
	if !d.IsDevice() {
		return mountedIdentity(d.Path), nil
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

// RecordIdentity stores a device volume's current identity (after
// formatting, its filesystem UUID joins it).
func (m *Manager) RecordIdentity(ctx context.Context, v *Volume, dev string) error {
	id, err := deviceIdentity(dev)
	if err != nil {
		return err
	}
	r := m.record(v.ID)
	if r == nil || maps.Equal(r.Identity, id) {
		return nil
	}
	r.Identity = id
	return m.put(r)
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
	rdev, err := blockDevice(dev)
	if err != nil {
		return mounter.Source{}, err
	}
	return mounter.Source{Major: int(unix.Major(rdev)), Minor: int(unix.Minor(rdev)), Root: "/"}, nil
}

// deviceUsable reports whether a device disk can be handed out now: its
// device is there and measured.
func deviceUsable(d *pool.Disk) bool {
	_, err := blockDevice(d.Device)
	return err == nil && d.Size() > 0
}

// mountedIdentity identifies the filesystem mounted at a MOUNT disk's root
// by the UUID of its block device; empty when it has none (tmpfs, ...).
func mountedIdentity(dir string) map[string]string {
	t, err := mounter.ReadTable()
	if err != nil {
		return nil
	}
	e := t.At(dir)
	if e == nil || !strings.HasPrefix(e.Source, "/dev/") {
		return nil
	}
	if u, err := fsUUID(e.Source); err == nil && u != "" {
		return map[string]string{idFSUUID: u}
	}
	return nil
}

// checkMountedDisk fails with ErrUnhealthy when a claimed mounted disk's
// filesystem is not the one recorded at its claim (another disk was
// mounted at its root).
func (m *Manager) checkMountedDisk(id, dir string) error {
	r := m.record(id)
	if r == nil || len(r.Identity) == 0 {
		return nil
	}
	if now := mountedIdentity(dir); !sameDisk(r.Identity, now) {
		return fmt.Errorf("%w: %s holds another filesystem (%v) than volume %s's (%v)", ErrDiskReplaced, dir, now, id, r.Identity)
	}
	return nil
}
