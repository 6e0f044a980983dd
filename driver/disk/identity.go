package disk

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/localdisk-csi/localdisk/driver/mounter"
)

// Identity facets of a block device.
const (
	WWN     = "wwn"     // the device's World Wide Name
	Serial  = "serial"  // the device's serial number
	FSUUID  = "fsUUID"  // the UUID of the filesystem on it
	Backing = "backing" // a loop device's backing file
)

// ReadIdentity reads what identifies a device beyond its /dev name (WWN,
// serial, filesystem UUID, loop backing file), as a device disk's volume
// records it; an error when it has none (such a disk is never handed out).
// It runs blkid(8) every time: Identities caches it.
func ReadIdentity(dev string) (map[string]string, error) {
	rdev, err := DeviceNumber(dev)
	if err != nil {
		return nil, err
	}
	id := sysfsFacets(rdev)
	if u, err := FSUUIDOf(dev); err == nil && u != "" {
		id[FSUUID] = u
	}
	return identityOf(dev, id)
}

// sysfsFacets reads the facets the kernel shows in sysfs (cheap: no device
// I/O); the filesystem UUID needs blkid.
func sysfsFacets(rdev uint64) map[string]string {
	sys := sysfsDir(rdev)
	id := map[string]string{}
	read := func(key string, files ...string) {
		for _, f := range files {
			if b, err := os.ReadFile(sys + f); err == nil && strings.TrimSpace(string(b)) != "" {
				id[key] = strings.TrimSpace(string(b))
				return
			}
		}
	}
	read(WWN, "device/wwid", "wwid", "device/wwn")
	read(Serial, "device/serial", "serial")
	read(Backing, "loop/backing_file")
	return id
}

func sysfsDir(rdev uint64) string {
	return fmt.Sprintf("/sys/dev/block/%d:%d/", unix.Major(rdev), unix.Minor(rdev))
}

func identityOf(dev string, id map[string]string) (map[string]string, error) {
	if len(id) == 0 {
		return nil, fmt.Errorf("device %s has no stable identity (no WWN, serial, filesystem UUID or loop backing file)", dev)
	}
	return id, nil
}

// SameDisk reports whether two identities name one disk: every facet both
// know agrees, and they share at least one.
func SameDisk(a, b map[string]string) bool {
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

// BlockDevice fails unless dev (followed through /dev/disk/by-* links) is
// a block device, as a device disk must be to be present.
func BlockDevice(dev string) error {
	_, err := statBlock(dev)
	return err
}

// DeviceNumber stats dev (following /dev/disk/by-* links) and returns its
// device number, failing unless it is a block device.
func DeviceNumber(dev string) (uint64, error) {
	st, err := statBlock(dev)
	return st.Rdev, err
}

func statBlock(dev string) (unix.Stat_t, error) {
	var st unix.Stat_t
	if err := unix.Stat(dev, &st); err != nil {
		return st, fmt.Errorf("device %s: %w", dev, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return st, fmt.Errorf("%s is not a block device", dev)
	}
	return st, nil
}

// Size is the size of a block device in bytes.
func Size(dev string) (int64, error) {
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

// FSUUIDOf is the UUID of the filesystem on dev ("" when there is none),
// probed by blkid(8) with an argument vector.
func FSUUIDOf(dev string) (string, error) {
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

// Usable reports whether a device disk can be handed out now: its device
// is there and was measured (size > 0).
func Usable(dev string, size int64) bool {
	return BlockDevice(dev) == nil && size > 0
}

// MountedIdentity identifies the filesystem mounted at a MOUNT disk's root
// by the UUID of its block device; empty when it has none (tmpfs, ...). It
// runs blkid(8) every time: Identities.Mounted caches it.
func MountedIdentity(dir string) map[string]string {
	t, err := mounter.ReadTable()
	if err != nil {
		return nil
	}
	return mountedIdentity(t, dir, FSUUIDOf)
}

func mountedIdentity(t mounter.Table, dir string, probe func(string) (string, error)) map[string]string {
	e := t.At(dir)
	if e == nil || !strings.HasPrefix(e.Source, "/dev/") {
		return nil
	}
	if u, err := probe(e.Source); err == nil && u != "" {
		return map[string]string{FSUUID: u}
	}
	return nil
}

// MountRoot reports whether dir is a directory on another device than its
// parent: the root of a mounted filesystem (what a PATH pool's root and a
// MOUNT disk's path should be), so that an unmounted disk's empty directory
// on the root filesystem is never handed out or wiped.
func MountRoot(dir string) bool {
	var st, parent unix.Stat_t
	if unix.Lstat(dir, &st) != nil || unix.Lstat(filepath.Dir(dir), &parent) != nil {
		return false
	}
	return st.Mode&unix.S_IFMT == unix.S_IFDIR && st.Dev != parent.Dev
}

// ReadOnlyFS reports whether the filesystem holding dir is mounted
// read-only.
func ReadOnlyFS(dir string) bool {
	var st unix.Statfs_t
	return unix.Statfs(dir, &st) == nil && st.Flags&unix.ST_RDONLY != 0
}
