package controller

import (
	"context"
	"sort"
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"

	"github.com/localdisk-csi/localdisk/driver/csiutil"
)

// healthTokenPrefix marks ControllerListVolumeHealth tokens:
// "health:<first volume ID to look at>", a position like ListVolumes'.
const healthTokenPrefix = "health:"

// ControllerGetVolumeHealth reports what the node knows is wrong with a
// volume (volume.Health): its pool or disk missing or replaced, its
// directory gone, its usage over an unenforced capacity, or its erase
// pending. csi.proto: "Volume does not exist | 5 NOT_FOUND".
func (s *Server) ControllerGetVolumeHealth(_ context.Context, req *csi.ControllerGetVolumeHealthRequest) (*csi.ControllerGetVolumeHealthResponse, error) {
	id := req.GetVolumeId()
	if id == "" {
		return nil, csiutil.Errorf(codes.InvalidArgument, "volume_id is missing")
	}
	conds, err := s.Volumes.Health(id, true)
	if err != nil {
		return nil, csiutil.ToStatus(err)
	}
	return &csi.ControllerGetVolumeHealthResponse{VolumeHealth: csiutil.VolumeHealth(id, conds)}, nil
}

// ControllerListVolumeHealth lists the volumes with an adverse condition
// ("List of abnormal volume health entries"), in ID order, at most
// max_entries of them a page. Over-capacity comes from the usage measured
// last (by stats or ControllerGetVolumeHealth): no tree is walked here. csi.proto: "Invalid `starting_token` | 10
// ABORTED".
func (s *Server) ControllerListVolumeHealth(_ context.Context, req *csi.ControllerListVolumeHealthRequest) (*csi.ControllerListVolumeHealthResponse, error) {
	if req.GetMaxEntries() < 0 {
		return nil, csiutil.Errorf(codes.InvalidArgument, "max_entries must not be negative")
	}
	start := ""
	if t := req.GetStartingToken(); t != "" {
		var ok bool
		if start, ok = strings.CutPrefix(t, healthTokenPrefix); !ok || start == "" {
			return nil, csiutil.Errorf(codes.Aborted, "starting_token %q was not issued by this plugin", t)
		}
	}
	ids := s.Volumes.HealthIDs()
	resp := &csi.ControllerListVolumeHealthResponse{}
	max := int(req.GetMaxEntries())
	for i := sort.SearchStrings(ids, start); i < len(ids); i++ {
		// Cached usage only: a list must not walk every volume's tree.
		conds, err := s.Volumes.Health(ids[i], false)
		if err != nil || len(conds) == 0 { // gone meanwhile, unreadable, or healthy
			continue
		}
		if max > 0 && len(resp.Entries) == max {
			resp.NextToken = healthTokenPrefix + ids[i]
			break
		}
		resp.Entries = append(resp.Entries, csiutil.VolumeHealth(ids[i], conds))
	}
	return resp, nil
}
