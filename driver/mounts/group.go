package mounts

import (
	"fmt"
	"os"
	"strconv"
)

// groupBits make the volume root writable by its group, and new files and
// directories in it inherit the group (setgid).
const groupBits = 0o2070

// applyMountGroup gives the volume's root directory to a volume_mount_group
// (a numeric GID; "" for none) so that group can write: group ownership and
// setgid on the root only, never a recursive chown (Kubernetes fsGroup with
// VOLUME_MOUNT_GROUP, non-root Mesos tasks). Idempotent.
func applyMountGroup(dir *os.File, group string) error {
	if group == "" {
		return nil
	}
	gid, err := strconv.ParseUint(group, 10, 31)
	if err != nil {
		return fmt.Errorf("%w: volume_mount_group %q is not a numeric group ID", ErrBadMountGroup, group)
	}
	if err := dir.Chown(-1, int(gid)); err != nil {
		return fmt.Errorf("set the group of the volume: %v", err)
	}
	fi, err := dir.Stat()
	if err != nil {
		return fmt.Errorf("%v", err)
	}
	if mode := fi.Mode(); mode&os.ModeSetgid == 0 || mode.Perm()&0o070 != 0o070 {
		if err := dir.Chmod(mode.Perm() | os.ModeSetgid | groupBits&0o777); err != nil {
			return fmt.Errorf("make the volume group-writable: %v", err)
		}
	}
	return nil
}
