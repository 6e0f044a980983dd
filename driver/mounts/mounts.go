// Package mounts makes and removes the mounts of volumes on this node:
// stage, publish, unpublish, unstage. It owns every decision about them:
// what is mounted where and whose mount it is (one mount table snapshot,
// taken under the volume's and the path's locks, so that repeated calls
// stack nothing and conflicting ones fail cleanly), which paths may be
// mounted on or removed, the group of a volume_mount_group, the read-only
// flag of a raw device, and the numbers of NodeGetVolumeStats.
//
// It knows nothing of gRPC or CSI messages: requests come as plain values
// and failures as the sentinel errors of errors.go, wrapped with their
// context, which driver/csiutil maps to codes. The kernel is reached
// through a mounter.Interface, so the whole package runs against
// fakemounter without root.
package mounts

import (
	"fmt"
	"strings"

	"github.com/localdisk-csi/localdisk/driver/mounter"
	"github.com/localdisk-csi/localdisk/driver/volume"
	"github.com/localdisk-csi/localdisk/driver/volume/stagemark"
)

// Mounts makes the mounts of the volumes of one volume manager.
type Mounts struct {
	vols   *volume.Manager
	m      mounter.Interface
	staged *stagemark.Records // where ROOT and PATH volumes are staged
}

// New serves the volumes of vols, mounting with m (mounter.New() for the
// kernel).
func New(vols *volume.Manager, m mounter.Interface) *Mounts {
	return &Mounts{vols: vols, m: m, staged: vols.Staging()}
}

// Capability is how a CO asks to use a volume, as far as its mounts go.
type Capability struct {
	// Block asks for raw block access, else for a mounted filesystem.
	Block bool
	// FSType is the filesystem type asked for ("": any).
	FSType string
	// SingleWriter is SINGLE_NODE_SINGLE_WRITER: one publish at a time.
	SingleWriter bool
	// ReadOnlyMode is an access mode that only reads: every publish is
	// read-only.
	ReadOnlyMode bool
	// MountGroup is a volume_mount_group: the numeric ID of a group that
	// must be able to write to the volume ("": none).
	MountGroup string
}

// CheckAccess reports why a volume cannot serve block (or mount) access:
// block access needs a device disk, and a device volume created for one
// access type keeps it.
func CheckAccess(block, device, rawBlock bool) error {
	switch {
	case block && !device:
		return fmt.Errorf("block access needs a device disk; this volume is a directory")
	case block != rawBlock && device:
		if rawBlock {
			return fmt.Errorf("this is a raw block volume; mount access is not served")
		}
		return fmt.Errorf("this is a filesystem volume; block access is not served")
	}
	return nil
}

// CheckFSType reports an fs_type other than the volume's (have "": the
// volume's filesystem is not one localdisk makes, and any type is taken
// as given).
func CheckFSType(want, have string) error {
	if want != "" && have != "" && !strings.EqualFold(want, have) {
		return fmt.Errorf("fs_type %q asked, but the volume's disk holds %s", want, have)
	}
	return nil
}

// serves fails with ErrNotServed when v cannot serve c. A directory
// volume's fs_type is judged at CreateVolume only: COs replay a recorded
// one (a PV's, a Mesos profile's) at every stage, and older volumes must
// go on mounting.
func (c Capability) serves(v *volume.Volume) error {
	err := CheckAccess(c.Block, v.Device(), v.Block)
	if err == nil && v.Device() {
		err = CheckFSType(c.FSType, v.FSType())
	}
	if err != nil {
		return fmt.Errorf("%w: volume %s: %v", ErrNotServed, v.ID, err)
	}
	return nil
}
