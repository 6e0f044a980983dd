package sanity

import (
	"fmt"
	"strings"
	"testing"

	"github.com/localdisk-csi/localdisk/test/testutil"
)

// deviceMiB is the size of each device; XFS needs at least 300 MiB.
const deviceMiB = 320

// RunDevices runs csi-sanity against a MOUNT pool of three blank loop
// devices formatted with fsType, with access type "mount" or "block". A
// device volume's capacity is the whole device.
func RunDevices(t *testing.T, accessType, fsType string) {
	testutil.RequireRoot(t)
	dir := testutil.ShortTempDir(t)
	var config strings.Builder
	config.WriteString("pools:\n- name: devs\n  kind: mount\n  disks:\n")
	for range 3 {
		fmt.Fprintf(&config, "  - device: %s\n    fsType: %s\n", testutil.LoopDevice(t, dir, deviceMiB), fsType)
	}
	const size = deviceMiB << 20
	Run(t, Options{
		NoSnapshots: true, // MOUNT pools refuse snapshots and clones
		Dir:         dir,
		Config:      config.String(),
		Pool:        "devs",
		VolumeSize:  size,
		ExpandSize:  size,
		AccessType:  accessType,
	})
}
