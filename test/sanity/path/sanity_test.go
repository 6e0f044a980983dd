// Package path runs csi-sanity against a PATH pool: an extra disk (a loop
// mounted ext4 image) mounted at the pool's root, whose snapshots and
// clones are full copies (`snapshots: copy`).
package path

import (
	"fmt"
	"testing"

	"github.com/localdisk-csi/localdisk/test/sanity"
	"github.com/localdisk-csi/localdisk/test/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

func TestSanity_Path(t *testing.T) {
	testutil.RequireRoot(t)
	dir := testutil.ShortTempDir(t)
	disk := testutil.LoopDisk(t, dir, 512, "ext4")
	config := fmt.Sprintf(`pools:
- name: data
  kind: path
  path: %s
  capacity: 400Mi
  snapshots: copy
`, disk)
	sanity.Run(t, sanity.Options{
		Dir:        dir,
		Config:     config,
		Pool:       "data",
		VolumeSize: 32 << 20,
		Disks:      []string{disk},
	})
}
