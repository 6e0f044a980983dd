package quota

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/localdisk-csi/localdisk/test/uml"
)

// quotaModules are the modules the UML kernel needs for ext4 quota files.
var quotaModules = []string{"kernel/fs/quota/quota_tree.ko", "kernel/fs/quota/quota_v2.ko"}

// TestUML runs this package's TestInUML* tests inside user-mode Linux, once
// on XFS and once on ext4, each with a disk mounted with prjquota and one
// without: the host kernel cannot mount either with project quota.
func TestUML(t *testing.T) {
	if os.Getenv(inUMLEnv) != "" {
		t.Skip("already inside UML")
	}
	if testing.Short() {
		t.Skip("boots user-mode Linux; skipped with -short")
	}
	uml.Require(t, "insmod", "mkfs.xfs", "mkfs.ext4")
	bin := uml.BuildTestBinary(t, "./driver/quota")
	for _, fs := range []struct {
		name    string
		disks   []uml.Disk
		modules []string
	}{
		{
			name: "xfs",
			disks: []uml.Disk{
				{Name: "quota", Size: 320 << 20, Format: []string{"mkfs.xfs", "-q", "-f"}, MountOptions: "prjquota"},
				{Name: "plain", Size: 320 << 20, Format: []string{"mkfs.xfs", "-q", "-f"}},
			},
		},
		{
			name: "ext4",
			disks: []uml.Disk{
				{Name: "quota", Size: 128 << 20, Format: ext4Format, MountOptions: "prjquota"},
				{Name: "plain", Size: 128 << 20, Format: ext4Format},
			},
			modules: quotaModules,
		},
	} {
		t.Run(fs.name, func(t *testing.T) {
			res := uml.Run(t, uml.Options{
				Binary:  bin,
				Args:    []string{"-test.run", "^TestInUML", "-test.v", "-test.count=1"},
				Env:     []string{inUMLEnv + "=" + fs.name},
				Disks:   fs.disks,
				Modules: fs.modules,
			})
			t.Logf("UML kernel %s, %s; inner test output:\n%s", res.Kernel, fs.name, res.Output)
			if res.ExitCode != 0 {
				t.Fatalf("the tests inside UML failed (exit %d)", res.ExitCode)
			}
			checkInnerRun(t, res.Output)
		})
	}
}

// ext4Format makes an ext4 filesystem with project quota: inodes of 256
// bytes hold project IDs; -m 0 keeps sizes predictable.
var ext4Format = []string{"mkfs.ext4", "-q", "-F", "-m", "0", "-I", "256", "-O", "quota,project"}

// checkInnerRun fails the test unless every TestInUML* test ran and passed:
// a skip inside UML would be a false success.
func checkInnerRun(t *testing.T, out string) {
	t.Helper()
	passed := regexp.MustCompile(`(?m)^--- PASS: (TestInUML\w+)`).FindAllStringSubmatch(out, -1)
	if len(passed) < 9 {
		t.Errorf("only %d TestInUML tests passed inside UML, want 9", len(passed))
	}
	if strings.Contains(out, "--- SKIP") || strings.Contains(out, "--- FAIL") {
		t.Errorf("a test was skipped or failed inside UML")
	}
}
