// Package root runs csi-sanity against a ROOT pool: a directory on the
// filesystem of the test's temporary directory, whose snapshots and clones
// are copies (reflinks where that filesystem has them, `snapshots: copy`
// elsewhere).
package root

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/localdisk-csi/localdisk/test/sanity"
	"github.com/localdisk-csi/localdisk/test/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

func TestSanity_Root(t *testing.T) {
	testutil.RequireRoot(t)
	dir := testutil.ShortTempDir(t)
	// The pool directory does not exist yet: a ROOT pool creates it.
	config := fmt.Sprintf(`pools:
- name: root
  kind: root
  path: %s
  capacity: 100Gi
  snapshots: copy
`, filepath.Join(dir, "pool"))
	sanity.Run(t, sanity.Options{
		Dir:        dir,
		Config:     config,
		Pool:       "root",
		VolumeSize: 64 << 20,
	})
}
