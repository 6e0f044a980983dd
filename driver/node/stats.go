package node

import (
	"context"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/localdisk-csi/localdisk/driver/csiutil"
	"github.com/localdisk-csi/localdisk/driver/mounts"
)

// NodeGetVolumeStats reports the volume's own usage at a path where it is
// mounted (mounts.Stats): NotFound for an unknown volume or a path that
// does not show it.
func (s *Server) NodeGetVolumeStats(_ context.Context, req *csi.NodeGetVolumeStatsRequest) (*csi.NodeGetVolumeStatsResponse, error) {
	id, p := req.GetVolumeId(), req.GetVolumePath()
	if err := required(id, "volume_id", p, "volume_path"); err != nil {
		return nil, err
	}
	st, err := s.Mounts.Stats(id, p)
	if err != nil {
		return nil, csiutil.ToStatus(err)
	}
	usage := []*csi.VolumeUsage{toUsage(csi.VolumeUsage_BYTES, st.Bytes)}
	if st.Inodes != nil {
		usage = append(usage, toUsage(csi.VolumeUsage_INODES, *st.Inodes))
	}
	return &csi.NodeGetVolumeStatsResponse{Usage: usage}, nil
}

func toUsage(unit csi.VolumeUsage_Unit, a mounts.Amount) *csi.VolumeUsage {
	return &csi.VolumeUsage{Unit: unit, Total: a.Total, Used: a.Used, Available: a.Available}
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

// NodeExpandVolume confirms an expansion the controller already made and
// reports the size (mounts.ConfirmExpansion).
func (s *Server) NodeExpandVolume(_ context.Context, req *csi.NodeExpandVolumeRequest) (*csi.NodeExpandVolumeResponse, error) {
	id, p := req.GetVolumeId(), req.GetVolumePath()
	if err := required(id, "volume_id", p, "volume_path"); err != nil {
		return nil, err
	}
	r := req.GetCapacityRange()
	size, err := s.Mounts.ConfirmExpansion(id, p, r.GetRequiredBytes(), r.GetLimitBytes())
	if err != nil {
		return nil, csiutil.ToStatus(err)
	}
	return &csi.NodeExpandVolumeResponse{CapacityBytes: size}, nil
}
