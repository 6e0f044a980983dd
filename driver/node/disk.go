package node

import (
	"slices"

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
		srcs, err := s.Volumes.StageSources(t, v)
		if err != nil {
			return nil, false
		}
		out = append(out, srcs...)
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
// it shows one of the volume's StageSources (staged), or, for a whole disk,
// the disk's root (old: how versions before the staging mark staged it;
// kubelet never unstages that, so a stage replaces it with the mark).
func (s *Server) stagedBy(t mounter.Table, v *volume.Volume, e *mountinfo.Info) (staged, old bool, err error) {
	srcs, err := s.Volumes.StageSources(t, v)
	if err != nil {
		return false, false, csiutil.ToStatus(err)
	}
	if slices.Contains(srcs, mounter.SourceOf(e)) {
		return true, false, nil
	}
	if !v.WholeDisk() {
		return false, false, nil
	}
	root, err := s.Volumes.Source(t, v, false)
	return false, err == nil && mounter.SourceOf(e) == root, nil
}
