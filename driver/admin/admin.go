// Package admin serves localdisk's operator API on the plugin's socket, next
// to the CSI services: the pools' state and the volumes with their phases
// and mounts, for `localdisk status` and `localdisk volumes`. The service is
// described by hand (no generated code): each method takes
// google.protobuf.Empty and returns a google.protobuf.Struct holding the JSON
// form of Status or []VolumeInfo.
package admin

import (
	"cmp"
	"context"
	"encoding/json"
	"sort"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/localdisk-csi/localdisk/driver/csiutil"
	"github.com/localdisk-csi/localdisk/driver/mounter"
	"github.com/localdisk-csi/localdisk/driver/snapshot"
	"github.com/localdisk-csi/localdisk/driver/volume"
)

// ServiceName is the gRPC service of the operator API.
const ServiceName = "localdisk.v1.Admin"

// PoolStatus is one pool as `localdisk status` shows it.
type PoolStatus struct {
	Name          string   `json:"name"`
	Kind          string   `json:"kind"`
	Root          string   `json:"root,omitempty"`
	Disks         []string `json:"disks,omitempty"`
	Capacity      int64    `json:"capacity"`
	Allocated     int64    `json:"allocated"`
	Free          int64    `json:"free"`
	Healthy       bool     `json:"healthy"`
	Absent        bool     `json:"absent,omitempty"`
	Volumes       int      `json:"volumes"`
	QuotaEnforced bool     `json:"quotaEnforced"`
	// Snapshots is how the pool makes snapshots and clones: btrfs,
	// reflink, copy or none (driver/snapshot); SnapshotCount how many it
	// holds, and SnapshotsWhyNot why it has none.
	Snapshots       string `json:"snapshots"`
	SnapshotCount   int    `json:"snapshotCount,omitempty"`
	SnapshotsWhyNot string `json:"snapshotsWhyNot,omitempty"`
	// Used is what the volumes hold, where capacity is accounted, not
	// enforced (measured by the health watch); Overused says it is more
	// than was allocated to them.
	Used          int64 `json:"used,omitempty"`
	Overused      bool  `json:"overused,omitempty"`
	ListUnclaimed bool  `json:"listUnclaimed,omitempty"`
}

// Status is the answer of Status.
type Status struct {
	Driver  string       `json:"driver"`
	Version string       `json:"version"`
	NodeID  string       `json:"nodeID"`
	Pools   []PoolStatus `json:"pools"`
}

// VolumeInfo is one volume as `localdisk volumes` shows it.
type VolumeInfo struct {
	ID        string   `json:"id"`
	Name      string   `json:"name"`
	Pool      string   `json:"pool"`
	Kind      string   `json:"kind"`
	Capacity  int64    `json:"capacity"`
	Phase     string   `json:"phase"`
	Mounts    []string `json:"mounts,omitempty"`
	Unclaimed bool     `json:"unclaimed,omitempty"`
}

// Server answers the operator API from the volume manager.
type Server struct {
	Volumes                 *volume.Manager
	Snapshots               *snapshot.Manager // nil: no snapshots reported
	Driver, Version, NodeID string
}

// Register adds the service to a gRPC server.
func Register(s *grpc.Server, srv *Server) {
	s.RegisterService(&grpc.ServiceDesc{
		ServiceName: ServiceName,
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{
			{MethodName: "Status", Handler: handler("Status", func(context.Context) (any, error) { return srv.Status(), nil })},
			{MethodName: "Volumes", Handler: handler("Volumes", func(context.Context) (any, error) { return srv.VolumeInfos() })},
		},
	}, srv)
}

func handler(method string, f func(context.Context) (any, error)) grpc.MethodHandler {
	return func(_ any, ctx context.Context, dec func(any) error, ic grpc.UnaryServerInterceptor) (any, error) {
		if err := dec(&emptypb.Empty{}); err != nil {
			return nil, csiutil.ToStatus(err)
		}
		// Errors reach the client with a code of the one error table
		// (csiutil.ToStatus: INTERNAL for a failure of the plugin, such as
		// an unreadable mount table), never as UNKNOWN.
		call := func(ctx context.Context, _ any) (any, error) {
			v, err := f(ctx)
			if err != nil {
				return nil, csiutil.ToStatus(err)
			}
			st, err := toStruct(v)
			if err != nil {
				return nil, csiutil.ToStatus(err)
			}
			return st, nil
		}
		if ic == nil {
			return call(ctx, nil)
		}
		return ic(ctx, &emptypb.Empty{}, &grpc.UnaryServerInfo{FullMethod: "/" + ServiceName + "/" + method}, call)
	}
}

// toStruct wraps a value's JSON form in a Struct ({"items": v} for lists).
func toStruct(v any) (*structpb.Struct, error) {
	blob, err := json.Marshal(map[string]any{"items": v})
	if err != nil {
		return nil, err
	}
	s := &structpb.Struct{}
	return s, s.UnmarshalJSON(blob)
}

// Status reports every pool.
func (s *Server) Status() Status {
	counts := map[string]int{}
	for _, r := range s.Volumes.Records() {
		counts[r.Pool]++
	}
	snapCounts := map[string]int{}
	if s.Snapshots != nil {
		for _, sn := range s.Snapshots.List() {
			snapCounts[sn.Pool]++
		}
	}
	st := Status{Driver: s.Driver, Version: s.Version, NodeID: s.NodeID}
	for _, p := range s.Volumes.Pools() {
		u := s.Volumes.PoolUsage(p)
		ps := PoolStatus{Name: p.Name, Kind: string(p.Kind), Root: p.Path, Capacity: u.Capacity,
			Allocated: u.Allocated, Free: u.Free, Healthy: p.Healthy(), Absent: !p.Present(), Volumes: counts[p.Name],
			QuotaEnforced: p.Enforcement() != "",
			ListUnclaimed: p.ListUnclaimed}
		if used, ok := p.Used(); ok {
			ps.Used, ps.Overused = used, p.Overused()
		}
		if s.Snapshots != nil {
			m, why := s.Snapshots.MethodOf(p)
			ps.Snapshots, ps.SnapshotCount = m.String(), snapCounts[p.Name]
			if why != nil {
				ps.SnapshotsWhyNot = why.Error()
			}
		}
		for _, d := range p.Disks {
			ps.Disks = append(ps.Disks, cmp.Or(d.Device, d.Path))
		}
		st.Pools = append(st.Pools, ps)
	}
	return st
}

// VolumeInfos lists every record (any phase) and every listed unclaimed
// disk, with the mounts that show each volume.
func (s *Server) VolumeInfos() ([]VolumeInfo, error) {
	t, err := mounter.ReadTable()
	if err != nil {
		return nil, err
	}
	var out []VolumeInfo
	for _, r := range s.Volumes.Records() {
		out = append(out, VolumeInfo{ID: r.ID, Name: r.Name, Pool: r.Pool, Kind: r.Kind, Capacity: r.Capacity, Phase: string(r.Phase)})
	}
	for _, v := range s.Volumes.List() {
		if !v.Claimed {
			out = append(out, VolumeInfo{ID: v.ID, Pool: v.Pool.Name, Kind: string(v.Pool.Kind), Capacity: v.Capacity, Phase: "unclaimed", Unclaimed: true})
		}
	}
	for i := range out {
		v, err := s.Volumes.Lookup(out[i].ID)
		if err != nil {
			continue
		}
		if src, err := s.Volumes.Source(t, v, v.Block); err == nil {
			for _, u := range t.Uses(v.Path(), src) {
				out[i].Mounts = append(out[i].Mounts, u.Mountpoint)
			}
		}
		if v.WholeDisk() { // staged with its mark
			if srcs, err := s.Volumes.StageSources(t, v); err == nil {
				for _, u := range t.Uses("", srcs[0]) { // the removed mark's too: below it
					out[i].Mounts = append(out[i].Mounts, u.Mountpoint)
				}
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}
