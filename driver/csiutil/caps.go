package csiutil

import (
	"fmt"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/localdisk-csi/localdisk/driver/mounts"
)

// CheckCapability reports why localdisk cannot serve a volume capability, or
// nil when it can. Every volume lives on one node: multi-node access modes
// and mount flags are not served; fs_type is accepted as given (a bind mount
// shows the pool's own filesystem). Block access is served by device disks
// only, which the callers check against the volume or pool.
func CheckCapability(c *csi.VolumeCapability) error {
	if c == nil {
		return fmt.Errorf("volume capability is missing")
	}
	switch {
	case c.GetBlock() != nil:
	case c.GetMount() == nil:
		return fmt.Errorf("access_type is missing")
	case len(c.GetMount().GetMountFlags()) > 0:
		return fmt.Errorf("mount_flags %v are not supported for bind-mounted volumes", c.GetMount().GetMountFlags())
	}
	switch m := c.GetAccessMode().GetMode(); m {
	case csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER,
		csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY,
		csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER,
		csi.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER:
		return nil
	case csi.VolumeCapability_AccessMode_UNKNOWN:
		return fmt.Errorf("access_mode is missing")
	default:
		return fmt.Errorf("access mode %s is not supported: localdisk volumes live on one node", m)
	}
}

// CheckCapabilities checks a list, which must not be empty nor mix block
// and mount access; it reports whether it asks for block access.
func CheckCapabilities(cs []*csi.VolumeCapability) (block bool, err error) {
	if len(cs) == 0 {
		return false, fmt.Errorf("volume_capabilities are missing")
	}
	for i, c := range cs {
		if err := CheckCapability(c); err != nil {
			return false, err
		}
		if i > 0 && IsBlock(c) != block {
			return false, fmt.Errorf("volume_capabilities mix block and mount access")
		}
		block = IsBlock(c)
	}
	return block, nil
}

// IsBlock reports whether the capability asks for raw block access.
func IsBlock(c *csi.VolumeCapability) bool { return c.GetBlock() != nil }

// CheckVolume reports why a volume cannot serve a capability: block access
// needs a device disk, and a volume created for one access type keeps it
// (mounts.CheckAccess).
func CheckVolume(c *csi.VolumeCapability, device, block bool) error {
	return mounts.CheckAccess(IsBlock(c), device, block)
}

// FSType is the filesystem type the capabilities ask for ("" when none
// names one).
func FSType(caps ...*csi.VolumeCapability) string {
	for _, c := range caps {
		if t := c.GetMount().GetFsType(); t != "" {
			return t
		}
	}
	return ""
}

// CheckFSType reports a capability asking for another filesystem type than
// the volume's (fsType "": the volume's filesystem is not one localdisk
// makes, and any type is accepted as given; mounts.CheckFSType).
func CheckFSType(c *csi.VolumeCapability, fsType string) error {
	return mounts.CheckFSType(c.GetMount().GetFsType(), fsType)
}

// Capability is what the node's mounts need of a capability checked by
// CheckCapability.
func Capability(c *csi.VolumeCapability) mounts.Capability {
	return mounts.Capability{
		Block:        IsBlock(c),
		FSType:       c.GetMount().GetFsType(),
		SingleWriter: c.GetAccessMode().GetMode() == csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER,
		ReadOnlyMode: ReadOnlyMode(c),
		MountGroup:   c.GetMount().GetVolumeMountGroup(),
	}
}

// ReadOnlyMode reports whether the access mode only allows reading.
func ReadOnlyMode(c *csi.VolumeCapability) bool {
	switch c.GetAccessMode().GetMode() {
	case csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY,
		csi.VolumeCapability_AccessMode_MULTI_NODE_READER_ONLY:
		return true
	}
	return false
}

// Segment is the node's topology segment.
func Segment(key, nodeID string) map[string]string { return map[string]string{key: nodeID} }

// OnNode reports whether a topology is exactly this node's: its one segment.
func OnNode(t *csi.Topology, key, nodeID string) bool {
	s := t.GetSegments()
	return len(s) == 1 && s[key] == nodeID // a segment this node lacks excludes it
}
