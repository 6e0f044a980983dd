// Package reflink runs csi-sanity against a PATH pool on XFS made with
// reflinks (mkfs.xfs -m reflink=1): snapshots and clones are tree copies
// whose file data is shared (FICLONE).
package reflink

import (
	"fmt"
	"testing"

	"github.com/localdisk-csi/localdisk/test/sanity"
	"github.com/localdisk-csi/localdisk/test/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

func TestSanity_Reflink(t *testing.T) {
	testutil.RequireRoot(t)
	dir := testutil.ShortTempDir(t)
	disk := testutil.LoopDisk(t, dir, 512, "xfs-reflink")
	config := fmt.Sprintf(`pools:
- name: xfs
  kind: path
  path: %s
  capacity: 400Mi
`, disk)
	sanity.Run(t, sanity.Options{
		Dir:        dir,
		Config:     config,
		Pool:       "xfs",
		VolumeSize: 32 << 20,
		Disks:      []string{disk},
	})
}
