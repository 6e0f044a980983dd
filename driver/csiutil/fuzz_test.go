package csiutil

import (
	"errors"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
)

// capOf builds a capability from fuzzed fields: access type 0 none, 1 mount,
// 2 block, 3 both set; flags split at commas.
func capOf(access byte, fsType, flags, group string, mode int32) *csi.VolumeCapability {
	c := &csi.VolumeCapability{}
	if access != 4 {
		c.AccessMode = &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_Mode(mode)}
	}
	m := &csi.VolumeCapability_MountVolume{FsType: fsType, VolumeMountGroup: group}
	if flags != "" {
		m.MountFlags = strings.Split(flags, ",")
	}
	switch access % 4 {
	case 1:
		c.AccessType = &csi.VolumeCapability_Mount{Mount: m}
	case 2, 3:
		c.AccessType = &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}}
	}
	return c
}

// FuzzCheckCapability: no capability makes the checks panic; an accepted
// one has an access type, no mount flags and a single-node access mode; a
// list mixing block and mount is refused.
func FuzzCheckCapability(f *testing.F) {
	f.Add(byte(1), "ext4", "", "", int32(1))
	f.Add(byte(2), "", "", "", int32(7))
	f.Add(byte(1), "xfs", "ro,noexec", "1000", int32(5))
	f.Add(byte(0), "", "", "", int32(0))
	f.Add(byte(4), "", "", "", int32(1))
	f.Add(byte(1), "\x00", ",", "-1", int32(-1))
	f.Add(byte(1), "", "", "", int32(1<<30))
	f.Fuzz(func(t *testing.T, access byte, fsType, flags, group string, mode int32) {
		c := capOf(access, fsType, flags, group, mode)
		err := CheckCapability(c)
		if err == nil {
			switch csi.VolumeCapability_AccessMode_Mode(mode) {
			case csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER, csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY,
				csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER, csi.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER:
			default:
				t.Errorf("CheckCapability accepted access mode %d", mode)
			}
			if c.GetMount() == nil && c.GetBlock() == nil {
				t.Error("CheckCapability accepted a capability without access type")
			}
			if len(c.GetMount().GetMountFlags()) > 0 {
				t.Error("CheckCapability accepted mount flags")
			}
		}
		other := capOf(access+1, fsType, "", group, int32(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER))
		block, err2 := CheckCapabilities([]*csi.VolumeCapability{c, other})
		if err2 == nil && (err != nil || IsBlock(c) != IsBlock(other) || block != IsBlock(c)) {
			t.Errorf("CheckCapabilities accepted %v and %v (block %v)", c, other, block)
		}
		_ = ReadOnlyMode(c)
		if code := Code(errors.New(fsType)); code != codes.Internal {
			t.Errorf("an unknown error maps to %v, want Internal", code)
		}
	})
}
