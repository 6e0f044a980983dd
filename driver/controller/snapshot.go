package controller

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/localdisk-csi/localdisk/driver/csiutil"
	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/pool"
	"github.com/localdisk-csi/localdisk/driver/snapshot"
	"github.com/localdisk-csi/localdisk/driver/volume"
)

// snapTokenPrefix marks ListSnapshots tokens: "snap:<first snapshot ID of
// the page>", a position, like ListVolumes' tokens.
const snapTokenPrefix = "snap:"

// CreateSnapshot snapshots a ROOT/PATH volume (driver/snapshot): at once
// on btrfs, else by a copy, which is its cut: the call waits for it, and
// past its deadline answers DEADLINE_EXCEEDED while the copy goes on; a
// repeated call answers the snapshot once it is done.
func (s *Server) CreateSnapshot(ctx context.Context, req *csi.CreateSnapshotRequest) (*csi.CreateSnapshotResponse, error) {
	if err := checkSnapshotName(req.GetName()); err != nil {
		return nil, err
	}
	if req.GetSourceVolumeId() == "" {
		return nil, csiutil.Errorf(codes.InvalidArgument, "source_volume_id is missing")
	}
	for k := range req.GetParameters() {
		// csi-snapshotter's --extra-create-metadata keys are ignored, as
		// CreateVolume ignores the provisioner's.
		if !strings.HasPrefix(k, layout.IgnoredParamPrefix) {
			return nil, csiutil.Errorf(codes.InvalidArgument, "unknown parameter %q: CreateSnapshot takes none", k)
		}
	}
	snap, err := s.Snapshots.Create(ctx, req.GetName(), req.GetSourceVolumeId())
	if err != nil {
		return nil, csiutil.ToStatus(err)
	}
	return &csi.CreateSnapshotResponse{Snapshot: toCSISnapshot(snap)}, nil
}

func checkSnapshotName(name string) error {
	if name == "" {
		return csiutil.Errorf(codes.InvalidArgument, "name is missing")
	}
	if len(name) > maxNameBytes {
		return csiutil.Errorf(codes.InvalidArgument, "name is %d bytes long; at most %d are kept", len(name), maxNameBytes)
	}
	if err := csiutil.CheckName(name); err != nil {
		return csiutil.Errorf(codes.InvalidArgument, "%v", err)
	}
	return nil
}

func toCSISnapshot(s *snapshot.Snapshot) *csi.Snapshot {
	return &csi.Snapshot{SnapshotId: s.ID, SourceVolumeId: s.Source, SizeBytes: s.Size,
		CreationTime: timestamppb.New(s.Created), ReadyToUse: s.Ready}
}

// DeleteSnapshot removes a snapshot and its data; an unknown ID is OK.
func (s *Server) DeleteSnapshot(ctx context.Context, req *csi.DeleteSnapshotRequest) (*csi.DeleteSnapshotResponse, error) {
	if req.GetSnapshotId() == "" {
		return nil, csiutil.Errorf(codes.InvalidArgument, "snapshot_id is missing")
	}
	if err := s.Snapshots.Delete(ctx, req.GetSnapshotId()); err != nil {
		return nil, csiutil.ToStatus(err)
	}
	return &csi.DeleteSnapshotResponse{}, nil
}

// GetSnapshot answers one snapshot: "Snapshot does not exist | 5
// NOT_FOUND" (spec.md, GetSnapshot errors) when there is none.
func (s *Server) GetSnapshot(_ context.Context, req *csi.GetSnapshotRequest) (*csi.GetSnapshotResponse, error) {
	if req.GetSnapshotId() == "" {
		return nil, csiutil.Errorf(codes.InvalidArgument, "snapshot_id is missing")
	}
	snap, err := s.Snapshots.Get(req.GetSnapshotId())
	if err != nil {
		return nil, csiutil.ToStatus(err)
	}
	return &csi.GetSnapshotResponse{Snapshot: toCSISnapshot(snap)}, nil
}

// ListSnapshots pages through the snapshots in ID order, filtered by
// snapshot_id or source_volume_id (an unknown one lists nothing: the spec
// wants an empty answer, not an error); max_entries 0 means all.
func (s *Server) ListSnapshots(_ context.Context, req *csi.ListSnapshotsRequest) (*csi.ListSnapshotsResponse, error) {
	if req.GetMaxEntries() < 0 {
		return nil, csiutil.Errorf(codes.InvalidArgument, "max_entries must not be negative")
	}
	start := ""
	if t := req.GetStartingToken(); t != "" {
		var ok bool
		// "Invalid `starting_token` | 10 ABORTED" (spec.md, ListSnapshots errors).
		if start, ok = strings.CutPrefix(t, snapTokenPrefix); !ok || start == "" {
			return nil, csiutil.Errorf(codes.Aborted, "starting_token %q was not issued by this plugin", t)
		}
	}
	var snaps []*snapshot.Snapshot
	for _, sn := range s.Snapshots.List() {
		if id := req.GetSnapshotId(); id != "" && sn.ID != id {
			continue
		}
		if src := req.GetSourceVolumeId(); src != "" && sn.Source != src {
			continue
		}
		snaps = append(snaps, sn)
	}
	i := sort.Search(len(snaps), func(i int) bool { return snaps[i].ID >= start })
	end := len(snaps)
	if n := int(req.GetMaxEntries()); n > 0 && i+n < end {
		end = i + n
	}
	resp := &csi.ListSnapshotsResponse{}
	for _, sn := range snaps[i:end] {
		resp.Entries = append(resp.Entries, &csi.ListSnapshotsResponse_Entry{Snapshot: toCSISnapshot(sn)})
	}
	if end < len(snaps) {
		resp.NextToken = snapTokenPrefix + snaps[end].ID
	}
	return resp, nil
}

// contentSource turns a CreateVolume's volume_content_source into the
// filler of the new volume, with the capacity range raised to the
// source's capacity when it asks for less (or nothing). A limit below the
// source's capacity is "Unsupported `capacity_range` | 11 OUT_OF_RANGE |
// ... when trying to create a volume smaller than the source snapshot"
// (spec.md, CreateVolume errors).
func (s *Server) contentSource(cs *csi.VolumeContentSource, req *volume.CreateRequest) error {
	var snapID, volID string
	switch {
	case cs.GetSnapshot() != nil:
		if snapID = cs.GetSnapshot().GetSnapshotId(); snapID == "" {
			return csiutil.Errorf(codes.InvalidArgument, "volume_content_source.snapshot.snapshot_id is missing")
		}
	case cs.GetVolume() != nil:
		if volID = cs.GetVolume().GetVolumeId(); volID == "" {
			return csiutil.Errorf(codes.InvalidArgument, "volume_content_source.volume.volume_id is missing")
		}
	default:
		return csiutil.Errorf(codes.InvalidArgument, "volume_content_source names neither a snapshot nor a volume")
	}
	src, size, err := s.Snapshots.Source(snapID, volID) // a missing source first: NOT_FOUND
	if err != nil {
		return csiutil.ToStatus(err)
	}
	if req.Block {
		// "Source incompatible or not supported | 3 INVALID_ARGUMENT".
		return csiutil.Errorf(codes.InvalidArgument, "volume_content_source: a block volume cannot be filled from a directory volume's data")
	}
	if req.Limit > 0 && req.Limit < size {
		return csiutil.ToStatus(fmt.Errorf("%w: limit_bytes %d is below the source's %d bytes", pool.ErrOutOfRange, req.Limit, size))
	}
	req.Required = max(req.Required, size)
	req.Source = src
	return nil
}
