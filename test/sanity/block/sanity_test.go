// Package block runs csi-sanity with raw block volumes against a MOUNT pool
// of three block devices (loop devices).
package block

import (
	"testing"

	"github.com/localdisk-csi/localdisk/test/sanity"
	"github.com/localdisk-csi/localdisk/test/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

func TestSanity_Block(t *testing.T) {
	sanity.RunDevices(t, "block", "xfs")
}
