package csiutil

import (
	"fmt"

	"github.com/container-storage-interface/spec/lib/go/csi"
)

// CheckCapability reports why localdisk cannot serve a volume capability, or
// nil when it can. Every volume is a directory on one node: block access,
// multi-node access modes and mount flags are not served; fs_type is
// accepted as given (a bind mount shows the pool's own filesystem).
func CheckCapability(c *csi.VolumeCapability) error {
	if c == nil {
		return fmt.Errorf("volume capability is missing")
	}
	switch {
	case c.GetBlock() != nil:
		return fmt.Errorf("block access is not supported: localdisk volumes are directories")
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

// CheckCapabilities checks a list, which must not be empty.
func CheckCapabilities(cs []*csi.VolumeCapability) error {
	if len(cs) == 0 {
		return fmt.Errorf("volume_capabilities are missing")
	}
	for _, c := range cs {
		if err := CheckCapability(c); err != nil {
			return err
		}
	}
	return nil
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

// OnNode reports whether a topology segment names this node.
func OnNode(t *csi.Topology, key, nodeID string) bool {
	return t.GetSegments()[key] == nodeID
}
