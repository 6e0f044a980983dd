package node

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
)

func TestNodeGetVolumeStats(t *testing.T) {
	e := newEnv(t)
	staging, target := e.staged(t), e.path("target")
	if err := e.publish(e.id, staging, target, rw, false); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(e.vol.Path(), "data"), make([]byte, 64<<10), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{target, staging, target + "/"} {
		resp, err := e.s.NodeGetVolumeStats(t.Context(), &csi.NodeGetVolumeStatsRequest{VolumeId: e.id, VolumePath: p})
		if err != nil {
			t.Fatalf("stats at %s: %v", p, err)
		}
		u := resp.GetUsage()
		if len(u) == 0 || u[0].GetUnit() != csi.VolumeUsage_BYTES || u[0].GetTotal() != e.vol.Capacity ||
			u[0].GetUsed() < 64<<10 || u[0].GetAvailable() > e.vol.Capacity-u[0].GetUsed() {
			t.Errorf("stats at %s: %v, want %d bytes in all with the file's used", p, u, e.vol.Capacity)
		}
	}
	for name, tc := range map[string]struct{ id, path string }{
		"an unknown volume":            {"r-unknown", target},
		"a path that is not mounted":   {e.id, e.path("nothing")},
		"a path whose parent is gone":  {e.id, e.path("gone/x")},
		"another volume's target path": {e.create(t, "v2").ID, target},
	} {
		_, err := e.s.NodeGetVolumeStats(t.Context(), &csi.NodeGetVolumeStatsRequest{VolumeId: tc.id, VolumePath: tc.path})
		wantCode(t, "stats of "+name, err, codes.NotFound)
	}
}

func TestNodeExpandVolume(t *testing.T) {
	e := newEnv(t)
	staging := e.staged(t)
	expand := func(id, p string, r *csi.CapacityRange) (int64, error) {
		resp, err := e.s.NodeExpandVolume(t.Context(), &csi.NodeExpandVolumeRequest{VolumeId: id, VolumePath: p, CapacityRange: r})
		return resp.GetCapacityBytes(), err
	}
	if size, err := expand(e.id, staging, &csi.CapacityRange{RequiredBytes: e.vol.Capacity}); err != nil || size != e.vol.Capacity {
		t.Errorf("expand to its size: %d, %v; want %d", size, err, e.vol.Capacity)
	}
	_, err := expand(e.id, staging, &csi.CapacityRange{RequiredBytes: e.vol.Capacity + 1})
	wantCode(t, "expand beyond what the controller made", err, codes.OutOfRange)
	_, err = expand(e.id, staging, &csi.CapacityRange{LimitBytes: e.vol.Capacity - 1})
	wantCode(t, "a limit below its size", err, codes.OutOfRange)
	_, err = expand(e.id, e.path("nothing"), nil)
	wantCode(t, "expand where it is not mounted", err, codes.NotFound)
	_, err = expand("r-unknown", staging, nil)
	wantCode(t, "expand an unknown volume", err, codes.NotFound)
}

func TestNodeGetVolumeHealth(t *testing.T) {
	e := newEnv(t)
	resp, err := e.s.NodeGetVolumeHealth(t.Context(), &csi.NodeGetVolumeHealthRequest{VolumeId: e.id})
	if err != nil || resp.GetVolumeHealth().GetVolumeId() != e.id || len(resp.GetVolumeHealth().GetHealthStatuses()) != 0 {
		t.Errorf("health of a healthy volume: %v, %v", resp, err)
	}
	_, err = e.s.NodeGetVolumeHealth(t.Context(), &csi.NodeGetVolumeHealthRequest{VolumeId: "r-unknown"})
	wantCode(t, "health of an unknown volume", err, codes.NotFound)
}

func TestNodeGetInfoAndCapabilities(t *testing.T) {
	e := newEnv(t)
	e.s.MaxVolumes = 7
	info, err := e.s.NodeGetInfo(t.Context(), &csi.NodeGetInfoRequest{})
	if err != nil || info.GetNodeId() != "n1" || info.GetMaxVolumesPerNode() != 7 ||
		info.GetAccessibleTopology().GetSegments()[e.s.TopologyKey] != "n1" {
		t.Errorf("NodeGetInfo: %v, %v", info, err)
	}
	caps, err := e.s.NodeGetCapabilities(t.Context(), &csi.NodeGetCapabilitiesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	have := map[csi.NodeServiceCapability_RPC_Type]bool{}
	for _, c := range caps.GetCapabilities() {
		have[c.GetRpc().GetType()] = true
	}
	for _, want := range []csi.NodeServiceCapability_RPC_Type{csi.NodeServiceCapability_RPC_STAGE_UNSTAGE_VOLUME,
		csi.NodeServiceCapability_RPC_VOLUME_MOUNT_GROUP, csi.NodeServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER} {
		if !have[want] {
			t.Errorf("NodeGetCapabilities lacks %v", want)
		}
	}
}
