package compat

import (
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/localdisk-csi/localdisk/test/testutil"
)

// TestCompat_CheckReportsTheMountPathUsed: `localdisk check` reports the
// way binds are really made, under each filter (mount(2), with the errno
// that decided it, and quotactl(2) on the block device) and without one
// (open_tree(2) on this kernel).
func TestCompat_CheckReportsTheMountPathUsed(t *testing.T) {
	testutil.RequireRoot(t)
	bin := testutil.BuildPlugin(t)
	for _, mode := range append(slices.Clone(testutil.SeccompModes), testutil.SeccompOff) {
		t.Run(mode, func(t *testing.T) {
			dir := testutil.ShortTempDir(t)
			prog, args := testutil.SeccompCommand(t, mode, bin, []string{"check", "--state-dir", filepath.Join(dir, "state")})
			out, err := exec.Command(prog, args...).CombinedOutput()
			if err != nil {
				t.Fatalf("localdisk check under %s: %v\n%s", mode, err, out)
			}
			mount, quota := line(string(out), "mount"), line(string(out), "quota")
			want := map[string][2]string{
				testutil.SeccompOff: {"binds use open_tree(2)", "quotactl_fd(2)"},
				"enosys":            {"binds use mount(2): the new mount API cannot be used here (open_tree: function not implemented)", "quotactl(2) on the block device"},
				"eperm":             {"binds use mount(2): the new mount API cannot be used here (open_tree: operation not permitted)", "quotactl(2) on the block device"},
			}[mode]
			if !strings.Contains(mount, want[0]) || !strings.Contains(quota, want[1]) {
				t.Errorf("under %s, check says %q and %q; want %q and %q\n%s", mode, mount, quota, want[0], want[1], out)
			}
		})
	}
}

// line is check's finding line about subject.
func line(out, subject string) string {
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) > 1 && f[1] == subject {
			return l
		}
	}
	return ""
}
