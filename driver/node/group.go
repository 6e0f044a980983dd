package node

import (
	"os"
	"strconv"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"

	"github.com/localdisk-csi/localdisk/driver/csiutil"
)

// groupBits make the volume root writable by its group, and new files and
// directories in it inherit the group (setgid).
const groupBits = 0o2070

// applyMountGroup gives the volume's root directory to the capability's
// volume_mount_group (a numeric GID) so that group can write: group
// ownership and setgid on the root only, never a recursive chown (Kubernetes
// fsGroup with VOLUME_MOUNT_GROUP, non-root Mesos tasks). Idempotent.
func applyMountGroup(dir *os.File, c *csi.VolumeCapability) error {
	g := c.GetMount().GetVolumeMountGroup()
	if g == "" {
		return nil
	}
	gid, err := strconv.ParseUint(g, 10, 31)
	if err != nil {
		return csiutil.Errorf(codes.InvalidArgument, "volume_mount_group %q is not a numeric group ID", g)
	}
	if err := dir.Chown(-1, int(gid)); err != nil {
		return csiutil.Errorf(codes.Internal, "set the group of the volume: %v", err)
	}
	fi, err := dir.Stat()
	if err != nil {
		return csiutil.Errorf(codes.Internal, "%v", err)
	}
	if mode := fi.Mode(); mode&os.ModeSetgid == 0 || mode.Perm()&0o070 != 0o070 {
		if err := dir.Chmod(mode.Perm() | os.ModeSetgid | groupBits&0o777); err != nil {
			return csiutil.Errorf(codes.Internal, "make the volume group-writable: %v", err)
		}
	}
	return nil
}
