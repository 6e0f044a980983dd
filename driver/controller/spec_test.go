package controller

import (
	"context"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/localdisk-csi/localdisk/driver/pool"
)

func mountCap(fsType string) *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: fsType}},
		AccessMode: rwo.AccessMode,
	}
}

func listed(t *testing.T, s *Server) int {
	t.Helper()
	r, err := s.ListVolumes(context.Background(), &csi.ListVolumesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	return len(r.GetEntries())
}

// csi.proto, CreateVolumeRequest.name: "Any Unicode string that conforms
// to the length limit is allowed except those containing the following
// banned characters: U+0000-U+0008, U+000B, U+000C, U+000E-U+001F,
// U+007F-U+009F."
func TestCreateVolume_BannedCharactersInName(t *testing.T) {
	s := newServer(t)
	for _, name := range []string{"a\x00b", "a\x07", "\x0bx", "x\x0c", "x\x1f", "x\x7f", "x\u0085", "x\u009f", "bad\xffutf8"} {
		_, err := s.CreateVolume(context.Background(), &csi.CreateVolumeRequest{Name: name, VolumeCapabilities: []*csi.VolumeCapability{rwo}})
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("name %q: %v, want InvalidArgument", name, err)
		}
	}
	if n := listed(t, s); n != 0 {
		t.Fatalf("%d volumes were created from banned names", n)
	}
	for _, name := range []string{"tab\tok", "lf\nok", "cr\rok", "ünï cödé"} {
		if _, err := s.CreateVolume(context.Background(), &csi.CreateVolumeRequest{Name: name, VolumeCapabilities: []*csi.VolumeCapability{rwo},
			CapacityRange: &csi.CapacityRange{RequiredBytes: pool.MiB}}); err != nil {
			t.Errorf("name %q: %v, want it allowed", name, err)
		}
	}
}

// A request with no capacity range gets 1 GiB, or what the pool can still
// hold when that is less: never OUT_OF_RANGE for a size nobody asked for.
func TestCreateVolume_DefaultSizeFitsThePool(t *testing.T) {
	s := newServerOf(t, 100*pool.MiB)
	create := func(name string, r *csi.CapacityRange) (*csi.CreateVolumeResponse, error) {
		return s.CreateVolume(context.Background(), &csi.CreateVolumeRequest{Name: name, VolumeCapabilities: []*csi.VolumeCapability{rwo}, CapacityRange: r})
	}
	if _, err := create("thirty", &csi.CapacityRange{RequiredBytes: 30 * pool.MiB}); err != nil {
		t.Fatal(err)
	}
	r, err := create("default", nil)
	if err != nil || r.GetVolume().GetCapacityBytes() != 70*pool.MiB {
		t.Fatalf("default on a pool with 70 MiB free: %v, %v; want 70 MiB", r.GetVolume().GetCapacityBytes(), err)
	}
	// The replay answers the same volume.
	if r2, err := create("default", nil); err != nil || r2.GetVolume().GetVolumeId() != r.GetVolume().GetVolumeId() {
		t.Errorf("replay: %v %v", r2, err)
	}
	if _, err := create("full", nil); status.Code(err) != codes.ResourceExhausted {
		t.Errorf("default on a full pool: %v, want ResourceExhausted", err)
	}
	big := newServerOf(t, 4<<30)
	r, err = big.CreateVolume(context.Background(), &csi.CreateVolumeRequest{Name: "d", VolumeCapabilities: []*csi.VolumeCapability{rwo}})
	if err != nil || r.GetVolume().GetCapacityBytes() != pool.DefaultVolumeSize {
		t.Errorf("default on a large pool: %v, %v; want 1 GiB", r.GetVolume().GetCapacityBytes(), err)
	}
	r, err = big.CreateVolume(context.Background(), &csi.CreateVolumeRequest{Name: "l", VolumeCapabilities: []*csi.VolumeCapability{rwo},
		CapacityRange: &csi.CapacityRange{LimitBytes: 5*pool.MiB + 1}})
	if err != nil || r.GetVolume().GetCapacityBytes() != 5*pool.MiB {
		t.Errorf("only a limit of 5 MiB + 1: %v, %v; want 5 MiB", r.GetVolume().GetCapacityBytes(), err)
	}
}

// A directory volume is served with its pool's filesystem type or with
// none named: CreateVolume refuses another (INVALID_ARGUMENT, nothing
// made), ValidateVolumeCapabilities does not confirm it.
func TestFSTypeOfDirectoryVolumes(t *testing.T) {
	s := newServer(t)
	r, err := s.CreateVolume(context.Background(), &csi.CreateVolumeRequest{Name: "a", VolumeCapabilities: []*csi.VolumeCapability{rwo},
		CapacityRange: &csi.CapacityRange{RequiredBytes: pool.MiB}})
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.Volumes.Lookup(r.GetVolume().GetVolumeId())
	if err != nil {
		t.Fatal(err)
	}
	real := v.FSType()
	if real == "" {
		t.Fatal("the pool's filesystem type is unknown")
	}
	wrong := "btrfs"
	if real == "btrfs" {
		wrong = "ext4"
	}
	_, err = s.CreateVolume(context.Background(), &csi.CreateVolumeRequest{Name: "b", VolumeCapabilities: []*csi.VolumeCapability{mountCap(wrong)},
		CapacityRange: &csi.CapacityRange{RequiredBytes: pool.MiB}})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("fs_type %s on a %s pool: %v, want InvalidArgument", wrong, real, err)
	}
	if n := listed(t, s); n != 1 {
		t.Errorf("%d volumes after a refused create, want 1", n)
	}
	if _, err := s.CreateVolume(context.Background(), &csi.CreateVolumeRequest{Name: "c", VolumeCapabilities: []*csi.VolumeCapability{mountCap(real)},
		CapacityRange: &csi.CapacityRange{RequiredBytes: pool.MiB}}); err != nil {
		t.Errorf("fs_type %s on its own pool: %v", real, err)
	}
	id := r.GetVolume().GetVolumeId()
	no, err := s.ValidateVolumeCapabilities(context.Background(), &csi.ValidateVolumeCapabilitiesRequest{VolumeId: id,
		VolumeCapabilities: []*csi.VolumeCapability{mountCap(wrong)}})
	if err != nil || no.GetConfirmed() != nil {
		t.Errorf("a %s volume confirmed as %s: %v %v", real, wrong, no, err)
	}
	for _, fs := range []string{"", real} {
		yes, err := s.ValidateVolumeCapabilities(context.Background(), &csi.ValidateVolumeCapabilitiesRequest{VolumeId: id,
			VolumeCapabilities: []*csi.VolumeCapability{mountCap(fs)}})
		if err != nil || yes.GetConfirmed() == nil {
			t.Errorf("fs_type %q not confirmed: %v %v", fs, yes, err)
		}
	}
}
