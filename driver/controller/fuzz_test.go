package controller

import (
	"context"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/localdisk-csi/localdisk/driver/pool"
	"github.com/localdisk-csi/localdisk/driver/state"
)

// checkCode fails t when a request answers INTERNAL, UNKNOWN
// (an unmapped error), UNAVAILABLE or DEADLINE_EXCEEDED, which a CO retries forever.
func checkCode(t *testing.T, what string, err error) {
	t.Helper()
	switch c := status.Code(err); c {
	case codes.Internal, codes.Unknown, codes.Unavailable, codes.DeadlineExceeded:
		t.Errorf("%s: %v", what, err)
	}
}

// FuzzController: random names, parameters, ranges, IDs and tokens never
// make the controller panic or answer INTERNAL; what it creates has a valid
// ID and is deleted again.
func FuzzController(f *testing.F) {
	f.Add("name", "pool", "r", int64(1<<20), int64(0), "r-0123", int32(0), "", byte(1), int32(1))
	f.Add("../../x", "kind", "root", int64(-1), int64(1), "..", int32(-1), "next:", byte(2), int32(5))
	f.Add("\x00", "csi.storage.k8s.io/x", "\x00", int64(1<<62), int64(1<<62), "/", int32(3), "next:zz", byte(0), int32(0))
	f.Add("n", "", "", int64(0), int64(1), "r-", int32(1), "garbage", byte(1), int32(1))
	f.Add("n", "pool", "r", int64(9223372036854775807), int64(0), "", int32(0), "next:\x00", byte(1), int32(1))
	s := newServerOf(f, 1<<40)
	f.Fuzz(func(t *testing.T, name, pk, pv string, required, limit int64, id string, maxEntries int32, token string, access byte, mode int32) {
		ctx := context.Background()
		params := map[string]string{pk: pv}
		c := &csi.VolumeCapability{AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_Mode(mode)}}
		switch access % 3 {
		case 1:
			c.AccessType = &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: pv}}
		case 2:
			c.AccessType = &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}}
		}
		caps := []*csi.VolumeCapability{c}
		rng := &csi.CapacityRange{RequiredBytes: required, LimitBytes: limit}
		r, err := s.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: name, Parameters: params, VolumeCapabilities: caps, CapacityRange: rng})
		checkCode(t, "CreateVolume", err)
		if err == nil {
			v := r.GetVolume()
			if !state.ValidID(v.GetVolumeId()) || v.GetCapacityBytes() <= 0 || v.GetCapacityBytes()%pool.MiB != 0 {
				t.Errorf("CreateVolume made %v", v)
			}
			defer func() {
				if _, err := s.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: v.GetVolumeId()}); err != nil {
					t.Errorf("DeleteVolume of a new volume: %v", err)
				}
			}()
		}
		_, err = s.ValidateVolumeCapabilities(ctx, &csi.ValidateVolumeCapabilitiesRequest{VolumeId: id, VolumeCapabilities: caps, Parameters: params})
		checkCode(t, "ValidateVolumeCapabilities", err)
		_, err = s.ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{VolumeId: id, CapacityRange: rng, VolumeCapability: c})
		checkCode(t, "ControllerExpandVolume", err)
		_, err = s.ListVolumes(ctx, &csi.ListVolumesRequest{MaxEntries: maxEntries, StartingToken: token})
		checkCode(t, "ListVolumes", err)
		cr, err := s.GetCapacity(ctx, &csi.GetCapacityRequest{Parameters: params, VolumeCapabilities: caps})
		if err != nil || cr.GetAvailableCapacity() < 0 || cr.GetMaximumVolumeSize().GetValue() < 0 {
			t.Errorf("GetCapacity: %v, %v", cr, err)
		}
		_, err = s.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: id})
		checkCode(t, "DeleteVolume", err)
	})
}
