// Package node serves the CSI Node service. It only validates requests,
// calls the domain (driver/mounts for the mounts of volumes, driver/volume
// for their health) and maps the domain's errors to codes (csiutil.ToStatus):
// every decision about what is mounted where is taken in driver/mounts.
package node

import (
	"context"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"

	"github.com/localdisk-csi/localdisk/driver/csiutil"
	"github.com/localdisk-csi/localdisk/driver/mounts"
	"github.com/localdisk-csi/localdisk/driver/volume"
)

// Server is the node service.
type Server struct {
	csi.UnimplementedNodeServer
	// Mounts makes the mounts of the volumes of Volumes.
	Mounts      *mounts.Mounts
	Volumes     *volume.Manager
	NodeID      string
	TopologyKey string
	// MaxVolumes is reported as max_volumes_per_node (0: no limit).
	MaxVolumes int64
}

var _ csi.NodeServer = (*Server)(nil)

// NodeGetCapabilities: stage/unstage, stats, volume health, expansion,
// volume mount groups and the single-node multi-writer access modes.
func (s *Server) NodeGetCapabilities(context.Context, *csi.NodeGetCapabilitiesRequest) (*csi.NodeGetCapabilitiesResponse, error) {
	var out []*csi.NodeServiceCapability
	for _, t := range []csi.NodeServiceCapability_RPC_Type{
		csi.NodeServiceCapability_RPC_STAGE_UNSTAGE_VOLUME,
		csi.NodeServiceCapability_RPC_GET_VOLUME_STATS,
		csi.NodeServiceCapability_RPC_GET_VOLUME_HEALTH,
		csi.NodeServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER,
		csi.NodeServiceCapability_RPC_EXPAND_VOLUME,
		csi.NodeServiceCapability_RPC_VOLUME_MOUNT_GROUP,
	} {
		out = append(out, &csi.NodeServiceCapability{Type: &csi.NodeServiceCapability_Rpc{
			Rpc: &csi.NodeServiceCapability_RPC{Type: t}}})
	}
	return &csi.NodeGetCapabilitiesResponse{Capabilities: out}, nil
}

// NodeGetInfo: the node ID, its topology segment and the volume limit.
func (s *Server) NodeGetInfo(context.Context, *csi.NodeGetInfoRequest) (*csi.NodeGetInfoResponse, error) {
	return &csi.NodeGetInfoResponse{
		NodeId:             s.NodeID,
		MaxVolumesPerNode:  s.MaxVolumes,
		AccessibleTopology: &csi.Topology{Segments: csiutil.Segment(s.TopologyKey, s.NodeID)},
	}, nil
}

// NodeStageVolume makes the volume available at the staging path
// (mounts.Stage).
func (s *Server) NodeStageVolume(ctx context.Context, req *csi.NodeStageVolumeRequest) (*csi.NodeStageVolumeResponse, error) {
	id, staging := req.GetVolumeId(), req.GetStagingTargetPath()
	if err := required(id, "volume_id", staging, "staging_target_path"); err != nil {
		return nil, err
	}
	c, err := capability(req.GetVolumeCapability())
	if err != nil {
		return nil, err
	}
	if err := s.Mounts.Stage(ctx, id, staging, c); err != nil {
		return nil, csiutil.ToStatus(err)
	}
	return &csi.NodeStageVolumeResponse{}, nil
}

// NodeUnstageVolume unmounts the staging path and keeps the directory
// (mounts.Unstage).
func (s *Server) NodeUnstageVolume(ctx context.Context, req *csi.NodeUnstageVolumeRequest) (*csi.NodeUnstageVolumeResponse, error) {
	id, staging := req.GetVolumeId(), req.GetStagingTargetPath()
	if err := required(id, "volume_id", staging, "staging_target_path"); err != nil {
		return nil, err
	}
	if err := s.Mounts.Unstage(ctx, id, staging); err != nil {
		return nil, csiutil.ToStatus(err)
	}
	return &csi.NodeUnstageVolumeResponse{}, nil
}

// NodePublishVolume binds the staged volume at the target, read-only when
// asked or when the access mode only reads (mounts.Publish).
func (s *Server) NodePublishVolume(ctx context.Context, req *csi.NodePublishVolumeRequest) (*csi.NodePublishVolumeResponse, error) {
	id, target, staging := req.GetVolumeId(), req.GetTargetPath(), req.GetStagingTargetPath()
	if err := required(id, "volume_id", target, "target_path"); err != nil {
		return nil, err
	}
	c, err := capability(req.GetVolumeCapability())
	if err != nil {
		return nil, err
	}
	// NodePublishVolume errors, spec.md: "Staging target path not set | 9
	// FAILED_PRECONDITION | Indicates that `STAGE_UNSTAGE_VOLUME`
	// capability is set but no `staging_target_path` was set." It is.
	if staging == "" {
		return nil, csiutil.Errorf(codes.FailedPrecondition, "staging_target_path is missing: volumes are staged before they are published")
	}
	if err := s.Mounts.Publish(ctx, id, staging, target, c, req.GetReadonly()); err != nil {
		return nil, csiutil.ToStatus(err)
	}
	return &csi.NodePublishVolumeResponse{}, nil
}

// NodeUnpublishVolume unmounts the target and removes it, never removing
// data (mounts.Unpublish).
func (s *Server) NodeUnpublishVolume(ctx context.Context, req *csi.NodeUnpublishVolumeRequest) (*csi.NodeUnpublishVolumeResponse, error) {
	id, target := req.GetVolumeId(), req.GetTargetPath()
	if err := required(id, "volume_id", target, "target_path"); err != nil {
		return nil, err
	}
	if err := s.Mounts.Unpublish(ctx, id, target); err != nil {
		return nil, csiutil.ToStatus(err)
	}
	return &csi.NodeUnpublishVolumeResponse{}, nil
}

// required checks that each named value (pairs of value, field name) is
// set. spec.md: "Missing required field | 3 INVALID_ARGUMENT | Indicates
// that a required field is missing from the request."
func required(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i] == "" {
			return csiutil.Errorf(codes.InvalidArgument, "%s is missing", pairs[i+1])
		}
	}
	return nil
}

// capability checks a volume capability (csiutil.CheckCapability) and
// returns what the mounts need of it. spec.md: "Invalid or unsupported
// field in the request | 3 INVALID_ARGUMENT".
func capability(c *csi.VolumeCapability) (mounts.Capability, error) {
	if err := csiutil.CheckCapability(c); err != nil {
		return mounts.Capability{}, csiutil.Errorf(codes.InvalidArgument, "%v", err)
	}
	return csiutil.Capability(c), nil
}
