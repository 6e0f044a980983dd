// Package device runs csi-sanity against a MOUNT pool of three blank block
// devices (loop devices), which the plugin formats (ext4) and mounts.
package device

import (
	"testing"

	"github.com/localdisk-csi/localdisk/test/sanity"
	"github.com/localdisk-csi/localdisk/test/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

func TestSanity_DeviceMount(t *testing.T) {
	sanity.RunDevices(t, "mount", "ext4")
}
