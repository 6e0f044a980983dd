package node

import (
	"google.golang.org/grpc/codes"

	"github.com/localdisk-csi/localdisk/driver/csiutil"
	"github.com/localdisk-csi/localdisk/driver/mounter"
	"github.com/localdisk-csi/localdisk/driver/volume"
)

// wholeDisk reports a volume that is a mounted disk of a MOUNT pool (given
// by path): the operator has already mounted its filesystem at the disk's
// path, so it is staged without a mount of its own and published straight
// from that mount's root. A bind of the root at the staging path would be a
// second reference to the same mount root, and kubelet refuses to unstage
// a device mount path that has other references (GetDeviceMountRefs): the
// volume would stay staged, and its PVC could never be deleted.
func wholeDisk(v *volume.Volume) bool { return !v.Device() && !v.Pool.Kind.Directory() }

// bindTarget binds a directory volume onto target: a whole disk from its
// mount root (which OpenDir checks is still the volume's filesystem), any
// other from its staging mount.
// It answers gRPC status errors.
func (s *Server) bindTarget(v *volume.Volume, staging, target string, ro bool) error {
	var err error
	if wholeDisk(v) {
		dir, derr := s.Volumes.OpenDir(v)
		if derr != nil {
			return csiutil.ToStatus(derr)
		}
		err = mounter.BindDir(dir, target, ro)
		dir.Close()
	} else {
		err = mounter.BindPath(staging, target, ro)
	}
	if err != nil {
		return csiutil.Errorf(codes.Internal, "publish volume %s: %v", v.ID, err)
	}
	return nil
}

// notStaged is publish's answer for a volume whose staging path does not
// show it.
func notStaged(id, staging string) error {
	return csiutil.Errorf(codes.FailedPrecondition, "volume %s is not staged at %s", id, staging)
}
