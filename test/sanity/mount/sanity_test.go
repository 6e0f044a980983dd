// Package mount runs csi-sanity against a MOUNT pool of three equal disks
// (loop mounted ext4 images), each of which is one whole volume.
package mount

import (
	"fmt"
	"strings"
	"testing"

	"github.com/localdisk-csi/localdisk/test/sanity"
	"github.com/localdisk-csi/localdisk/test/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

func TestSanity_Mount(t *testing.T) {
	testutil.RequireRoot(t)
	dir := testutil.ShortTempDir(t)
	var disks []string
	var config strings.Builder
	config.WriteString(`pools:
- name: disks
  kind: mount
  listUnclaimed: false
  disks:
`)
	for range 3 {
		disk := testutil.LoopDisk(t, dir, 64, "ext4")
		disks = append(disks, disk)
		fmt.Fprintf(&config, "  - path: %s\n", disk)
	}
	// A MOUNT volume's capacity is its whole disk, and csi-sanity wants
	// capacity == required when it sets required == limit: ask for exactly
	// what a disk holds.
	size := sanity.FilesystemSize(t, disks[0])
	for _, disk := range disks[1:] {
		if s := sanity.FilesystemSize(t, disk); s != size {
			t.Fatalf("disks differ in size: %s has %d bytes, %s has %d", disks[0], size, disk, s)
		}
	}
	sanity.Run(t, sanity.Options{
		Dir:         dir,
		Config:      config.String(),
		Pool:        "disks",
		VolumeSize:  size,
		ExpandSize:  size, // a whole disk cannot grow beyond itself
		Disks:       disks,
		NoSnapshots: true, // MOUNT pools refuse snapshots and clones
	})
}
