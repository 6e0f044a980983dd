package node

import (
	"github.com/moby/sys/mountinfo"
	"google.golang.org/grpc/codes"

	"github.com/localdisk-csi/localdisk/driver/csiutil"
	"github.com/localdisk-csi/localdisk/driver/mounter"
	"github.com/localdisk-csi/localdisk/driver/volume"
)

// bindTarget binds a directory volume at its target: a whole disk given by
// path from the disk's mount root (OpenDir checks it is still the volume's
// filesystem), since its staging path shows only its mark; any other from
// its staging mount.
func (s *Server) bindTarget(v *volume.Volume, staging, target string, ro bool) error {
	var err error
	if v.WholeDisk() {
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

// sources lists what a mount of the volume shows: its directory or its
// device's filesystem, its device node, and for a whole disk its staging
// mark. ok is false when one of them cannot be told (its disk is gone).
func (s *Server) sources(t mounter.Table, v *volume.Volume) (out []mounter.Source, ok bool) {
	for _, block := range []bool{false, true} {
		src, err := s.Volumes.Source(t, v, block)
		if err != nil {
			return nil, false
		}
		out = append(out, src)
	}
	if v.WholeDisk() {
		src, err := s.Volumes.StageSource(t, v)
		if err != nil {
			return nil, false
		}
		out = append(out, src)
	}
	return out, true
}

// readTable reads the mount table, as a gRPC status error.
func readTable() (mounter.Table, error) {
	t, err := mounter.ReadTable()
	if err != nil {
		return nil, csiutil.Errorf(codes.Internal, "%v", err)
	}
	return t, nil
}

// stagedBy reports whether the mount e at a staging path stages volume v:
// it shows the volume's StageSource, or, for a whole disk, the disk's root
// (how versions before the staging mark staged it: such a staging stays
// usable until it is unstaged).
func (s *Server) stagedBy(t mounter.Table, v *volume.Volume, e *mountinfo.Info) (bool, error) {
	src, err := s.Volumes.StageSource(t, v)
	if err != nil {
		return false, csiutil.ToStatus(err)
	}
	if mounter.SourceOf(e) == src {
		return true, nil
	}
	if !v.WholeDisk() {
		return false, nil
	}
	root, err := s.Volumes.Source(t, v, false)
	return err == nil && mounter.SourceOf(e) == root, nil
}
