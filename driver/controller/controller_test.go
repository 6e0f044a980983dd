package controller

import (
	"context"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/pool"
	"github.com/localdisk-csi/localdisk/driver/volume/volumetest"
)

const key = layout.TopologyKey

func newServer(tb testing.TB) *Server { return newServerOf(tb, 100*pool.MiB) }

// newServerOf is a controller over a ROOT pool of capacity bytes
// (accounting only) in a temporary directory.
func newServerOf(tb testing.TB, capacity int64) *Server {
	m := volumetest.RootManager(tb, tb.TempDir(), capacity)
	return &Server{Volumes: m, NodeID: "n1", TopologyKey: key}
}

var rwo = &csi.VolumeCapability{
	AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
	AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
}

func TestCreateVolume_Codes(t *testing.T) {
	s := newServer(t)
	block := &csi.VolumeCapability{AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}}, AccessMode: rwo.AccessMode}
	multi := &csi.VolumeCapability{AccessType: rwo.AccessType, AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER}}
	other := &csi.TopologyRequirement{Requisite: []*csi.Topology{{Segments: map[string]string{key: "n2"}}}}
	here := &csi.TopologyRequirement{Requisite: []*csi.Topology{{Segments: map[string]string{key: "n2"}}, {Segments: map[string]string{key: "n1"}}}}
	for _, tc := range []struct {
		name string
		req  *csi.CreateVolumeRequest
		want codes.Code
	}{
		{"a request without name is invalid", &csi.CreateVolumeRequest{VolumeCapabilities: []*csi.VolumeCapability{rwo}}, codes.InvalidArgument},
		{"a request without capabilities is invalid", &csi.CreateVolumeRequest{Name: "a"}, codes.InvalidArgument},
		{"block access is invalid", &csi.CreateVolumeRequest{Name: "a", VolumeCapabilities: []*csi.VolumeCapability{block}}, codes.InvalidArgument},
		{"multi-node access is invalid", &csi.CreateVolumeRequest{Name: "a", VolumeCapabilities: []*csi.VolumeCapability{multi}}, codes.InvalidArgument},
		{"an unknown parameter is invalid", &csi.CreateVolumeRequest{Name: "a", VolumeCapabilities: []*csi.VolumeCapability{rwo}, Parameters: map[string]string{"fsType": "xfs"}}, codes.InvalidArgument},
		{"a negative range is invalid", &csi.CreateVolumeRequest{Name: "a", VolumeCapabilities: []*csi.VolumeCapability{rwo}, CapacityRange: &csi.CapacityRange{RequiredBytes: -1}}, codes.InvalidArgument},
		{"another node's topology is exhausted", &csi.CreateVolumeRequest{Name: "a", VolumeCapabilities: []*csi.VolumeCapability{rwo}, AccessibilityRequirements: other}, codes.ResourceExhausted},
		{"a size beyond the pool is out of range", &csi.CreateVolumeRequest{Name: "a", VolumeCapabilities: []*csi.VolumeCapability{rwo}, CapacityRange: &csi.CapacityRange{RequiredBytes: 101 << 20}}, codes.OutOfRange},
		{"a size beyond the pool is exhausted for a topology-aware CO (Kubernetes reschedules)", &csi.CreateVolumeRequest{Name: "a", VolumeCapabilities: []*csi.VolumeCapability{rwo}, AccessibilityRequirements: here, CapacityRange: &csi.CapacityRange{RequiredBytes: 101 << 20}}, codes.ResourceExhausted},
		{"a requisite naming this node works", &csi.CreateVolumeRequest{Name: "a", VolumeCapabilities: []*csi.VolumeCapability{rwo}, AccessibilityRequirements: here, CapacityRange: &csi.CapacityRange{RequiredBytes: 1, LimitBytes: 1 << 20}}, codes.OK},
		{"the same name with another size already exists", &csi.CreateVolumeRequest{Name: "a", VolumeCapabilities: []*csi.VolumeCapability{rwo}, CapacityRange: &csi.CapacityRange{RequiredBytes: 2 << 20}}, codes.AlreadyExists},
		{"more than is free is exhausted", &csi.CreateVolumeRequest{Name: "b", VolumeCapabilities: []*csi.VolumeCapability{rwo}, CapacityRange: &csi.CapacityRange{RequiredBytes: 100 << 20}}, codes.ResourceExhausted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := s.CreateVolume(context.Background(), tc.req)
			if got := status.Code(err); got != tc.want {
				t.Fatalf("code = %s (%v), want %s", got, err, tc.want)
			}
			if err == nil {
				v := resp.GetVolume()
				if v.GetCapacityBytes() != 1<<20 || v.GetAccessibleTopology()[0].GetSegments()[key] != "n1" {
					t.Errorf("volume = %v", v)
				}
			}
		})
	}
}

func TestListVolumes_Paging(t *testing.T) {
	s := newServer(t)
	ids := map[string]bool{}
	for _, n := range []string{"a", "b", "c", "d", "e"} {
		r, err := s.CreateVolume(context.Background(), &csi.CreateVolumeRequest{Name: n, VolumeCapabilities: []*csi.VolumeCapability{rwo},
			CapacityRange: &csi.CapacityRange{RequiredBytes: 1 << 20}})
		if err != nil {
			t.Fatal(err)
		}
		ids[r.GetVolume().GetVolumeId()] = true
	}
	all, err := s.ListVolumes(context.Background(), &csi.ListVolumesRequest{})
	if err != nil || len(all.GetEntries()) != 5 || all.GetNextToken() != "" {
		t.Fatalf("one page: %v %v", all, err)
	}
	seen := map[string]bool{}
	token := ""
	for pages := 0; ; pages++ {
		r, err := s.ListVolumes(context.Background(), &csi.ListVolumesRequest{MaxEntries: 2, StartingToken: token})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range r.GetEntries() {
			if seen[e.GetVolume().GetVolumeId()] {
				t.Errorf("duplicate %s", e.GetVolume().GetVolumeId())
			}
			seen[e.GetVolume().GetVolumeId()] = true
		}
		if pages == 0 { // a deletion between pages skips nothing that remains
			_, err := s.DeleteVolume(context.Background(), &csi.DeleteVolumeRequest{VolumeId: r.GetEntries()[1].GetVolume().GetVolumeId()})
			if err != nil {
				t.Fatal(err)
			}
		}
		if token = r.GetNextToken(); token == "" {
			break
		}
	}
	if len(seen) != 5 {
		t.Errorf("paged through %d volumes, want 5", len(seen))
	}
	for _, bad := range []string{"invalid-token", "next:", "3"} {
		_, err := s.ListVolumes(context.Background(), &csi.ListVolumesRequest{StartingToken: bad})
		if status.Code(err) != codes.Aborted {
			t.Errorf("token %q: %v", bad, err)
		}
	}
	if _, err := s.ListVolumes(context.Background(), &csi.ListVolumesRequest{MaxEntries: -1}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("negative max_entries: %v", err)
	}
}

func TestGetCapacity_ZeroForWhatItCannotServe(t *testing.T) {
	s := newServer(t)
	block := &csi.VolumeCapability{AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}}, AccessMode: rwo.AccessMode}
	for _, tc := range []struct {
		name string
		req  *csi.GetCapacityRequest
		want int64
	}{
		{"no parameters: every pool", &csi.GetCapacityRequest{}, 100 << 20},
		{"the pool by name", &csi.GetCapacityRequest{Parameters: map[string]string{"pool": "r"}, VolumeCapabilities: []*csi.VolumeCapability{rwo}}, 100 << 20},
		{"this node's topology", &csi.GetCapacityRequest{AccessibleTopology: &csi.Topology{Segments: map[string]string{key: "n1"}}}, 100 << 20},
		{"another node's topology", &csi.GetCapacityRequest{AccessibleTopology: &csi.Topology{Segments: map[string]string{key: "n2"}}}, 0},
		{"an unknown pool", &csi.GetCapacityRequest{Parameters: map[string]string{"pool": "zz"}}, 0},
		{"an unknown parameter", &csi.GetCapacityRequest{Parameters: map[string]string{"x": "y"}}, 0},
		{"a kind with no pool", &csi.GetCapacityRequest{Parameters: map[string]string{"kind": "mount"}}, 0},
		{"block access", &csi.GetCapacityRequest{VolumeCapabilities: []*csi.VolumeCapability{block}}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := s.GetCapacity(context.Background(), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			if r.GetAvailableCapacity() != tc.want || r.GetMaximumVolumeSize() == nil || r.GetMaximumVolumeSize().GetValue() != tc.want {
				t.Errorf("= %d (max %v), want %d", r.GetAvailableCapacity(), r.GetMaximumVolumeSize(), tc.want)
			}
		})
	}
}

func TestValidateVolumeCapabilities(t *testing.T) {
	s := newServer(t)
	r, _ := s.CreateVolume(context.Background(), &csi.CreateVolumeRequest{Name: "a", VolumeCapabilities: []*csi.VolumeCapability{rwo},
		CapacityRange: &csi.CapacityRange{RequiredBytes: 1 << 20}})
	v := r.GetVolume()
	ok, err := s.ValidateVolumeCapabilities(context.Background(), &csi.ValidateVolumeCapabilitiesRequest{VolumeId: v.GetVolumeId(),
		VolumeContext: v.GetVolumeContext(), VolumeCapabilities: []*csi.VolumeCapability{rwo}, Parameters: map[string]string{"kind": "root"}})
	if err != nil || ok.GetConfirmed() == nil || ok.GetConfirmed().GetParameters()["kind"] != "root" || ok.GetConfirmed().GetVolumeContext()["pool"] != "r" {
		t.Errorf("supported: %v %v", ok, err)
	}
	block := &csi.VolumeCapability{AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}}, AccessMode: rwo.AccessMode}
	for name, req := range map[string]*csi.ValidateVolumeCapabilitiesRequest{
		"block":         {VolumeId: v.GetVolumeId(), VolumeCapabilities: []*csi.VolumeCapability{block}},
		"other pool":    {VolumeId: v.GetVolumeId(), VolumeCapabilities: []*csi.VolumeCapability{rwo}, Parameters: map[string]string{"kind": "path"}},
		"other context": {VolumeId: v.GetVolumeId(), VolumeCapabilities: []*csi.VolumeCapability{rwo}, VolumeContext: map[string]string{"pool": "x"}},
	} {
		no, err := s.ValidateVolumeCapabilities(context.Background(), req)
		if err != nil || no.GetConfirmed() != nil || no.GetMessage() == "" {
			t.Errorf("%s: %v %v", name, no, err)
		}
	}
	_, err = s.ValidateVolumeCapabilities(context.Background(), &csi.ValidateVolumeCapabilitiesRequest{VolumeId: "nope", VolumeCapabilities: []*csi.VolumeCapability{rwo}})
	if status.Code(err) != codes.NotFound {
		t.Errorf("unknown volume: %v", err)
	}
}
