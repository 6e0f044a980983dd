package node

import (
	"context"
	"errors"
	"io/fs"
	"slices"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"

	"github.com/localdisk-csi/localdisk/driver/csiutil"
	"github.com/localdisk-csi/localdisk/driver/mounter"
	"github.com/localdisk-csi/localdisk/driver/volume"
)

// NodeGetVolumeStats reports the volume's own usage at a path where it is
// mounted (its target or staging path): total is the volume's capacity, used
// what the volume itself holds, available what it may still write (bounded
// by its filesystem's free space). NotFound for an unknown volume or a path
// that does not show it. When the pool is unreachable behind the mount, the
// mount's own filesystem numbers are reported (NodeGetVolumeHealth says why).
func (s *Server) NodeGetVolumeStats(_ context.Context, req *csi.NodeGetVolumeStatsRequest) (*csi.NodeGetVolumeStatsResponse, error) {
	id, p := req.GetVolumeId(), req.GetVolumePath()
	if err := required(id, "volume_id", p, "volume_path"); err != nil {
		return nil, err
	}
	v, err := s.Volumes.Lookup(id)
	if err != nil {
		return nil, csiutil.ToStatus(err)
	}
	p, mark, err := s.mountedAt(v, p)
	if err != nil {
		return nil, err
	}
	if v.Device() {
		if v.Block {
			return &csi.NodeGetVolumeStatsResponse{Usage: []*csi.VolumeUsage{{Unit: csi.VolumeUsage_BYTES, Total: v.Capacity}}}, nil
		}
		return statfsUsage(id, p)
	}
	u, err := s.Volumes.Usage(v)
	if errors.Is(err, volume.ErrUnhealthy) && !mark { // a mark's filesystem is the state dir's
		return statfsUsage(id, p)
	}
	if err != nil {
		return nil, csiutil.ToStatus(err)
	}
	avail := max(min(v.Capacity-u.Bytes, u.FreeBytes), 0)
	usage := []*csi.VolumeUsage{{Unit: csi.VolumeUsage_BYTES, Total: v.Capacity, Used: u.Bytes, Available: avail}}
	switch {
	case u.InodeLimit > 0: // the volume's own limit, as for bytes
		usage = append(usage, &csi.VolumeUsage{Unit: csi.VolumeUsage_INODES, Total: u.InodeLimit, Used: u.Inodes,
			Available: max(min(u.InodeLimit-u.Inodes, u.FreeInodes), 0)})
	case !u.NoInodes: // no limit of its own: what its filesystem has left
		usage = append(usage, &csi.VolumeUsage{Unit: csi.VolumeUsage_INODES, Total: u.Inodes + u.FreeInodes, Used: u.Inodes, Available: u.FreeInodes})
	}
	return &csi.NodeGetVolumeStatsResponse{Usage: usage}, nil
}

// statfsUsage reports the filesystem numbers of the mount at p.
func statfsUsage(id, p string) (*csi.NodeGetVolumeStatsResponse, error) {
	var st unix.Statfs_t
	if err := unix.Statfs(p, &st); err != nil {
		if mounter.Corrupted(err) {
			return nil, csiutil.Errorf(codes.FailedPrecondition, "volume %s at %s does not answer: %v", id, p, err)
		}
		if errors.Is(err, fs.ErrNotExist) {
			return nil, csiutil.Errorf(codes.NotFound, "volume_path %s: %v", p, err)
		}
		return nil, csiutil.Errorf(codes.Internal, "statfs %s: %v", p, err)
	}
	bs := st.Bsize
	return &csi.NodeGetVolumeStatsResponse{Usage: []*csi.VolumeUsage{
		{Unit: csi.VolumeUsage_BYTES, Total: int64(st.Blocks) * bs, Available: int64(st.Bavail) * bs, Used: int64(st.Blocks-st.Bfree) * bs},
		{Unit: csi.VolumeUsage_INODES, Total: int64(st.Files), Available: int64(st.Ffree), Used: int64(st.Files - st.Ffree)},
	}}, nil
}

// NodeGetVolumeHealth reports what the node knows is wrong with a volume
// (volume.Health): INACCESSIBLE when its pool or disk is missing or
// replaced, DATA_LOSS when its directory is gone, DEGRADED when it holds
// more than its capacity where that is not enforced.
func (s *Server) NodeGetVolumeHealth(_ context.Context, req *csi.NodeGetVolumeHealthRequest) (*csi.NodeGetVolumeHealthResponse, error) {
	id := req.GetVolumeId()
	if err := required(id, "volume_id"); err != nil {
		return nil, err
	}
	conds, err := s.Volumes.Health(id, true)
	if err != nil {
		return nil, csiutil.ToStatus(err)
	}
	return &csi.NodeGetVolumeHealthResponse{VolumeHealth: csiutil.VolumeHealth(id, conds)}, nil
}

// mountedAt checks that the volume (or a directory of it) is mounted at
// path p and returns p canonical, and whether p shows a whole disk's
// staging mark; NotFound otherwise.
func (s *Server) mountedAt(v *volume.Volume, p string) (string, bool, error) {
	p, err := mounter.Canonical(p)
	if err != nil {
		return "", false, csiutil.Errorf(codes.NotFound, "volume_path: %v", err)
	}
	t, src, err := s.snapshot(v, v.Block)
	if err != nil {
		return "", false, err
	}
	e := t.At(p)
	if e != nil && v.WholeDisk() { // its staging path shows its mark
		if marks, err := s.Volumes.StageSources(t, v); err == nil && slices.Contains(marks, mounter.SourceOf(e)) {
			return p, true, nil
		}
	}
	if e == nil || !mounter.SourceOf(e).Within(src) {
		return "", false, csiutil.Errorf(codes.NotFound, "volume %s is not mounted at %s", v.ID, p)
	}
	return p, false, nil
}

// NodeExpandVolume confirms an expansion the controller already made (a
// bind-mounted directory has no filesystem to grow) and reports the size.
func (s *Server) NodeExpandVolume(_ context.Context, req *csi.NodeExpandVolumeRequest) (*csi.NodeExpandVolumeResponse, error) {
	id, p := req.GetVolumeId(), req.GetVolumePath()
	if err := required(id, "volume_id", p, "volume_path"); err != nil {
		return nil, err
	}
	v, err := s.Volumes.Lookup(id)
	if err != nil {
		return nil, csiutil.ToStatus(err)
	}
	if _, _, err := s.mountedAt(v, p); err != nil {
		return nil, err
	}
	if r := req.GetCapacityRange().GetRequiredBytes(); r > v.Capacity {
		return nil, csiutil.Errorf(codes.OutOfRange, "volume %s has %d bytes, %d requested: expand it with ControllerExpandVolume first", id, v.Capacity, r)
	}
	if l := req.GetCapacityRange().GetLimitBytes(); l > 0 && l < v.Capacity {
		return nil, csiutil.Errorf(codes.OutOfRange, "volume %s has %d bytes, above limit_bytes %d: volumes do not shrink", id, v.Capacity, l)
	}
	return &csi.NodeExpandVolumeResponse{CapacityBytes: v.Capacity}, nil
}
