package testutil

import (
	"testing"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// UnplugDisk unmounts the filesystem mounted at mountpoint (a LoopDisk, or
// any other disk), leaving its device attached and the empty mount point
// behind, as if the disk had not been mounted at boot. It returns replug,
// which mounts the same device there again with the same filesystem type.
//
// Calling replug is optional: LoopDisk's cleanup copes with a disk that is
// no longer mounted. It needs root.
func UnplugDisk(t testing.TB, mountpoint string) (replug func()) {
	t.Helper()
	RequireRoot(t)
	infos, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter(mountpoint))
	if err != nil {
		t.Fatalf("UnplugDisk: reading the mount table: %v", err)
	}
	if len(infos) == 0 {
		t.Fatalf("UnplugDisk: nothing is mounted at %s", mountpoint)
	}
	top := infos[len(infos)-1]
	device, fstype := top.Source, top.FSType
	if err := unmountPatiently(mountpoint); err != nil {
		t.Fatalf("UnplugDisk: unmounting %s: %v", mountpoint, err)
	}
	return func() {
		t.Helper()
		if err := unix.Mount(device, mountpoint, fstype, 0, ""); err != nil {
			t.Fatalf("replugging %s (%s) at %s: %v", device, fstype, mountpoint, err)
		}
	}
}

// RemountDisk does to the disk mounted at mountpoint what a reboot does: it
// unmounts its filesystem and mounts the same device at the same place
// again, so that the new mount shares nothing with the old one but the data.
func RemountDisk(t testing.TB, mountpoint string) {
	t.Helper()
	UnplugDisk(t, mountpoint)()
}
