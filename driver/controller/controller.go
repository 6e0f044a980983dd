// Package controller serves the CSI Controller service: a thin adaptor that
// validates requests, calls the volume manager and maps errors once.
package controller

import (
	"context"
	"errors"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/localdisk-csi/localdisk/driver/csiutil"
	"github.com/localdisk-csi/localdisk/driver/pool"
	"github.com/localdisk-csi/localdisk/driver/snapshot"
	"github.com/localdisk-csi/localdisk/driver/volume"
	"github.com/localdisk-csi/localdisk/driver/wire"
)

// Server is the controller service of one node's plugin.
type Server struct {
	csi.UnimplementedControllerServer
	Volumes     *volume.Manager
	Snapshots   *snapshot.Manager // snapshots and clones (driver/snapshot)
	NodeID      string
	TopologyKey string

	once     sync.Once
	topology []*csi.Topology

	// Wire, when set, is the server's codec: the full ListVolumes answer
	// is kept there, encoded once per change of the volume set.
	Wire *wire.Codec

	listMu   sync.Mutex
	listVols []*volume.Volume
	listAll  *csi.ListVolumesResponse // every entry, in vols order; never changed
}

var _ csi.ControllerServer = (*Server)(nil)

// ControllerGetCapabilities: create/delete, list, capacity, online
// expansion, the single-node multi-writer access modes, volume health
// (get and list), snapshots (create/delete, list, get) and clones. Not PUBLISH_UNPUBLISH_VOLUME: a local volume needs no
// attach step.
func (s *Server) ControllerGetCapabilities(context.Context, *csi.ControllerGetCapabilitiesRequest) (*csi.ControllerGetCapabilitiesResponse, error) {
	var out []*csi.ControllerServiceCapability
	for _, t := range []csi.ControllerServiceCapability_RPC_Type{
		csi.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME,
		csi.ControllerServiceCapability_RPC_LIST_VOLUMES,
		csi.ControllerServiceCapability_RPC_GET_CAPACITY,
		csi.ControllerServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER,
		csi.ControllerServiceCapability_RPC_EXPAND_VOLUME,
		csi.ControllerServiceCapability_RPC_GET_VOLUME_HEALTH,
		csi.ControllerServiceCapability_RPC_LIST_VOLUME_HEALTH,
		csi.ControllerServiceCapability_RPC_CREATE_DELETE_SNAPSHOT,
		csi.ControllerServiceCapability_RPC_LIST_SNAPSHOTS,
		csi.ControllerServiceCapability_RPC_GET_SNAPSHOT,
		csi.ControllerServiceCapability_RPC_CLONE_VOLUME,
	} {
		out = append(out, &csi.ControllerServiceCapability{Type: &csi.ControllerServiceCapability_Rpc{
			Rpc: &csi.ControllerServiceCapability_RPC{Type: t}}})
	}
	return &csi.ControllerGetCapabilitiesResponse{Capabilities: out}, nil
}

// CreateVolume makes a volume in a pool chosen by the parameters.
func (s *Server) CreateVolume(ctx context.Context, req *csi.CreateVolumeRequest) (*csi.CreateVolumeResponse, error) {
	if req.GetName() == "" {
		return nil, csiutil.Errorf(codes.InvalidArgument, "name is missing")
	}
	if len(req.GetName()) > maxNameBytes {
		return nil, csiutil.Errorf(codes.InvalidArgument, "name is %d bytes long; at most %d are kept", len(req.GetName()), maxNameBytes)
	}
	if err := csiutil.CheckName(req.GetName()); err != nil {
		return nil, csiutil.Errorf(codes.InvalidArgument, "%v", err)
	}
	block, err := csiutil.CheckCapabilities(req.GetVolumeCapabilities())
	if err != nil {
		return nil, csiutil.Errorf(codes.InvalidArgument, "%v", err)
	}
	if len(req.GetMutableParameters()) > 0 {
		return nil, csiutil.Errorf(codes.InvalidArgument, "mutable_parameters are not supported")
	}
	sel, err := s.Volumes.ParseSelector(req.GetParameters())
	if err != nil {
		return nil, csiutil.ToStatus(err)
	}
	if !s.reachable(req.GetAccessibilityRequirements()) {
		if s.Volumes.NameTaken(req.GetName()) { // it exists, where it is not wanted
			return nil, csiutil.Errorf(codes.AlreadyExists, "name %q is a volume of node %q, which accessibility_requirements exclude", req.GetName(), s.NodeID)
		}
		return nil, csiutil.Errorf(codes.ResourceExhausted, "accessibility_requirements exclude node %q: its volumes are only accessible there", s.NodeID)
	}
	creq := volume.CreateRequest{
		Name:     req.GetName(),
		Required: req.GetCapacityRange().GetRequiredBytes(),
		Limit:    req.GetCapacityRange().GetLimitBytes(),
		Selector: sel,
		Block:    block,
		FSType:   csiutil.FSType(req.GetVolumeCapabilities()...),
	}
	if cs := req.GetVolumeContentSource(); cs != nil {
		if err := s.contentSource(cs, &creq); err != nil {
			return nil, err
		}
	}
	v, err := s.Volumes.Create(ctx, creq)
	if (errors.Is(err, pool.ErrOutOfRange) || errors.Is(err, volume.ErrNoBlockPool)) && req.GetAccessibilityRequirements() != nil {
		// A topology-aware CO (Kubernetes) gives the volume back to its
		// scheduler only on RESOURCE_EXHAUSTED: this node can never hold
		// it, but another node's pool may.
		return nil, csiutil.Errorf(codes.ResourceExhausted, "cannot be provisioned on node %q: %v", s.NodeID, err)
	}
	if err != nil {
		return nil, csiutil.ToStatus(err)
	}
	out := s.toCSI(v)
	if cs := req.GetVolumeContentSource(); cs != nil {
		out.ContentSource = cs
	}
	return &csi.CreateVolumeResponse{Volume: out}, nil
}

// reachable: with requisite topologies, one must name this node (the
// preferred list only orders the requisite ones, so it cannot exclude us).
func (s *Server) reachable(ar *csi.TopologyRequirement) bool {
	if len(ar.GetRequisite()) == 0 {
		return true
	}
	for _, t := range ar.GetRequisite() {
		if csiutil.OnNode(t, s.TopologyKey, s.NodeID) {
			return true
		}
	}
	return false
}

func (s *Server) toCSI(v *volume.Volume) *csi.Volume {
	s.once.Do(func() {
		s.topology = []*csi.Topology{{Segments: csiutil.Segment(s.TopologyKey, s.NodeID)}}
	})
	return &csi.Volume{
		VolumeId:           v.ID,
		CapacityBytes:      v.Capacity,
		VolumeContext:      v.Context,
		AccessibleTopology: s.topology, // shared, read-only
	}
}

// DeleteVolume removes a volume and its data; an unknown ID is OK.
func (s *Server) DeleteVolume(ctx context.Context, req *csi.DeleteVolumeRequest) (*csi.DeleteVolumeResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, csiutil.Errorf(codes.InvalidArgument, "volume_id is missing")
	}
	if err := s.Volumes.Delete(ctx, req.GetVolumeId()); err != nil {
		return nil, csiutil.ToStatus(err)
	}
	return &csi.DeleteVolumeResponse{}, nil
}

// ValidateVolumeCapabilities confirms, echoing the request, when the volume
// exists and can serve every capability with those parameters and context.
func (s *Server) ValidateVolumeCapabilities(_ context.Context, req *csi.ValidateVolumeCapabilitiesRequest) (*csi.ValidateVolumeCapabilitiesResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, csiutil.Errorf(codes.InvalidArgument, "volume_id is missing")
	}
	if len(req.GetVolumeCapabilities()) == 0 {
		return nil, csiutil.Errorf(codes.InvalidArgument, "volume_capabilities are missing")
	}
	v, err := s.Volumes.Lookup(req.GetVolumeId())
	if err != nil {
		return nil, csiutil.ToStatus(err)
	}
	if _, err := csiutil.CheckCapabilities(req.GetVolumeCapabilities()); err != nil {
		return &csi.ValidateVolumeCapabilitiesResponse{Message: err.Error()}, nil
	}
	for _, c := range req.GetVolumeCapabilities() {
		if err := csiutil.CheckVolume(c, v.Device(), v.Block); err != nil {
			return &csi.ValidateVolumeCapabilitiesResponse{Message: err.Error()}, nil
		}
		if err := csiutil.CheckFSType(c, v.FSType()); err != nil {
			return &csi.ValidateVolumeCapabilitiesResponse{Message: err.Error()}, nil
		}
	}
	if sel, err := s.Volumes.ParseSelector(req.GetParameters()); err != nil || !sel.Match(v.Pool) {
		return &csi.ValidateVolumeCapabilitiesResponse{Message: "parameters do not select this volume's pool " + strconv.Quote(v.Pool.Name)}, nil
	}
	// The context must match (CSI): a key the volume lacks or holds with
	// another value is a mismatch; an omitted key is not.
	for k, got := range req.GetVolumeContext() {
		if want, ok := v.Context[k]; !ok || got != want {
			return &csi.ValidateVolumeCapabilitiesResponse{Message: "volume_context " + k + "=" + strconv.Quote(got) + " does not match the volume's context"}, nil
		}
	}
	return &csi.ValidateVolumeCapabilitiesResponse{Confirmed: &csi.ValidateVolumeCapabilitiesResponse_Confirmed{
		VolumeContext:      req.GetVolumeContext(),
		VolumeCapabilities: req.GetVolumeCapabilities(),
		Parameters:         req.GetParameters(),
	}}, nil
}

// maxNameBytes bounds volume names (CSI asks plugins to take at least 128
// characters; Kubernetes PV names are at most 253), so that a name never
// makes a huge record or log line.
const maxNameBytes = 1024

// tokenPrefix marks ListVolumes tokens: "next:<first volume ID of the page>".
// A token names a position, not an index, so deletions between pages never
// skip a volume.
const tokenPrefix = "next:"

// ListVolumes pages through every volume in ID order; max_entries 0 means
// everything in one page.
func (s *Server) ListVolumes(_ context.Context, req *csi.ListVolumesRequest) (*csi.ListVolumesResponse, error) {
	if req.GetMaxEntries() < 0 {
		return nil, csiutil.Errorf(codes.InvalidArgument, "max_entries must not be negative")
	}
	start := ""
	if t := req.GetStartingToken(); t != "" {
		var ok bool
		if start, ok = strings.CutPrefix(t, tokenPrefix); !ok || start == "" {
			return nil, csiutil.Errorf(codes.Aborted, "starting_token %q was not issued by this plugin", t)
		}
	}
	vols := s.Volumes.List()
	all := s.all(vols)
	i := sort.Search(len(vols), func(i int) bool { return vols[i].ID >= start })
	end := len(vols)
	if n := int(req.GetMaxEntries()); n > 0 && i+n < end {
		end = i + n
	}
	if i == 0 && end == len(vols) {
		return all, nil // the common case: one page, encoded once (Wire)
	}
	resp := &csi.ListVolumesResponse{Entries: all.Entries[i:end:end]}
	if end < len(vols) {
		resp.NextToken = tokenPrefix + vols[end].ID
	}
	return resp, nil
}

// all is the one-page ListVolumes answer for a List result, built once per
// result: List returns the same slice until the volumes change, and the
// answer is only read (marshalled) afterwards, so it is shared.
func (s *Server) all(vols []*volume.Volume) *csi.ListVolumesResponse {
	s.listMu.Lock()
	defer s.listMu.Unlock()
	if s.listAll != nil && len(s.listVols) == len(vols) && (len(vols) == 0 || &s.listVols[0] == &vols[0]) {
		return s.listAll
	}
	out := make([]*csi.ListVolumesResponse_Entry, len(vols))
	for i, v := range vols {
		out[i] = &csi.ListVolumesResponse_Entry{Volume: s.toCSI(v)}
	}
	s.listVols, s.listAll = vols, &csi.ListVolumesResponse{Entries: out}
	s.Wire.Keep(s.listAll)
	return s.listAll
}

// GetCapacity answers what a CreateVolume with these parameters and
// capabilities could still get on this node; 0 (never an error) for what it
// cannot serve.
func (s *Server) GetCapacity(_ context.Context, req *csi.GetCapacityRequest) (*csi.GetCapacityResponse, error) {
	zero := &csi.GetCapacityResponse{MaximumVolumeSize: wrapperspb.Int64(0)}
	if t := req.GetAccessibleTopology(); t != nil && !csiutil.OnNode(t, s.TopologyKey, s.NodeID) {
		return zero, nil
	}
	block := false
	if len(req.GetVolumeCapabilities()) > 0 {
		var err error
		if block, err = csiutil.CheckCapabilities(req.GetVolumeCapabilities()); err != nil {
			return zero, nil
		}
	}
	sel, err := s.Volumes.ParseSelector(req.GetParameters())
	if err != nil {
		return zero, nil
	}
	avail, maxVol := s.Volumes.Capacity(sel, block)
	return &csi.GetCapacityResponse{AvailableCapacity: avail, MaximumVolumeSize: wrapperspb.Int64(maxVol)}, nil
}

// ControllerExpandVolume grows a volume online: the new size is charged to
// its pool and recorded (and enforced where the pool enforces capacity). No
// node step is needed: a bind-mounted directory has no filesystem to grow.
func (s *Server) ControllerExpandVolume(ctx context.Context, req *csi.ControllerExpandVolumeRequest) (*csi.ControllerExpandVolumeResponse, error) {
	if req.GetVolumeId() == "" {
		return nil, csiutil.Errorf(codes.InvalidArgument, "volume_id is missing")
	}
	if req.GetCapacityRange() == nil {
		return nil, csiutil.Errorf(codes.InvalidArgument, "capacity_range is missing")
	}
	if c := req.GetVolumeCapability(); c != nil {
		if err := csiutil.CheckCapability(c); err != nil {
			return nil, csiutil.Errorf(codes.InvalidArgument, "%v", err)
		}
		if v, err := s.Volumes.Lookup(req.GetVolumeId()); err == nil {
			if err := csiutil.CheckVolume(c, v.Device(), v.Block); err != nil {
				return nil, csiutil.Errorf(codes.InvalidArgument, "volume %s: %v", v.ID, err)
			}
		}
	}
	size, err := s.Volumes.Expand(ctx, req.GetVolumeId(), req.GetCapacityRange().GetRequiredBytes(), req.GetCapacityRange().GetLimitBytes())
	if err != nil {
		return nil, csiutil.ToStatus(err)
	}
	return &csi.ControllerExpandVolumeResponse{CapacityBytes: size}, nil
}
