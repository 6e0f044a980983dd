package load

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// MountsUnder lists the mount points at or below dir (one entry per mount).
func MountsUnder(dir string) ([]string, error) {
	if d, err := filepath.EvalSymlinks(dir); err == nil {
		dir = d
	}
	infos, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(infos))
	for _, i := range infos {
		out = append(out, i.Mountpoint)
	}
	return out, nil
}

// RemoveDir detaches (umount2 MNT_DETACH, deepest first) whatever is still
// mounted below dir, then removes dir. It returns the mount points it had
// to detach: each is a mount that a cycle failed to undo. If a mount
// cannot be detached, dir is left in place so that the removal never
// reaches into a mounted filesystem.
func RemoveDir(dir string) (detached []string, err error) {
	for range 16 {
		mps, err := MountsUnder(dir)
		if err != nil {
			return detached, err
		}
		if len(mps) == 0 {
			return detached, os.RemoveAll(dir)
		}
		sort.SliceStable(mps, func(i, j int) bool { return strings.Count(mps[i], "/") > strings.Count(mps[j], "/") })
		for _, mp := range mps {
			detached = append(detached, mp)
			err := unix.Unmount(mp, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW)
			if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
				return detached, fmt.Errorf("detach %s: %w; %s left in place", mp, err, dir)
			}
		}
	}
	return detached, fmt.Errorf("mounts remain below %s; left in place", dir)
}

// MountOf is the mount that holds dir.
func MountOf(dir string) (*mountinfo.Info, error) {
	if d, err := filepath.EvalSymlinks(dir); err == nil {
		dir = d
	}
	infos, err := mountinfo.GetMounts(nil)
	if err != nil {
		return nil, err
	}
	var best *mountinfo.Info
	for _, i := range infos {
		if (dir == i.Mountpoint || i.Mountpoint == "/" || strings.HasPrefix(dir, i.Mountpoint+"/")) &&
			(best == nil || len(i.Mountpoint) >= len(best.Mountpoint)) {
			best = i
		}
	}
	if best == nil {
		return nil, fmt.Errorf("no mount holds %s", dir)
	}
	return best, nil
}
