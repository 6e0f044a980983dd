// Package quota runs csi-sanity (expansion included) against PATH pools
// whose capacities are enforced: btrfs qgroups on the host, and XFS and ext4
// project quotas inside user-mode Linux, where this test binary runs again.
package quota

import (
	"fmt"
	"os"
	"regexp"
	"testing"

	"github.com/localdisk-csi/localdisk/test/sanity"
	"github.com/localdisk-csi/localdisk/test/testutil"
	"github.com/localdisk-csi/localdisk/test/uml"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// inUML names the filesystem when this binary runs inside UML.
const inUML = "LOCALDISK_SANITY_IN_UML"

func config(root string) string {
	// snapshots: copy matters on ext4 only (full copies under project
	// quotas); btrfs makes btrfs snapshots, XFS reflinks.
	return fmt.Sprintf("pools:\n- name: q\n  kind: path\n  path: %s\n  capacity: 256Mi\n  quota: required\n  snapshots: copy\n", root)
}

// TestSanity_Quota runs csi-sanity on a btrfs pool here, or inside UML on
// the prjquota disk it was given.
func TestSanity_Quota(t *testing.T) {
	testutil.RequireRoot(t)
	dir := testutil.ShortTempDir(t)
	var disks []string
	root := os.Getenv("UML_DISK_DATA")
	if os.Getenv(inUML) == "" {
		root = testutil.LoopDisk(t, dir, 512, "btrfs")
		disks = []string{root}
	}
	sanity.Run(t, sanity.Options{Dir: dir, Config: config(root), Pool: "q", VolumeSize: 16 << 20, ExpandSize: 32 << 20, Disks: disks})
}

// TestUML_SanityProjectQuotas boots UML for XFS and ext4 and runs
// TestSanity_Quota there (under LOCALDISK_TEST_SECCOMP, with the plugin
// under the seccomp launcher there too).
func TestUML_SanityProjectQuotas(t *testing.T) {
	if os.Getenv(inUML) != "" {
		t.Skip("already inside UML")
	}
	testutil.RequireRoot(t)
	uml.Require(t, "insmod", "mkfs.xfs", "mkfs.ext4")
	plugin := testutil.BuildPlugin(t)
	bin := uml.BuildTestBinary(t, "./test/sanity/quota")
	env := []string{testutil.BinEnv + "=" + plugin, "GINKGO_NO_COLOR=TRUE"}
	if mode := testutil.Seccomp(); mode != "" {
		// The plugin inside UML runs under the seccomp launcher too.
		env = append(env, testutil.SeccompEnv+"="+mode, testutil.LauncherEnv+"="+testutil.BuildLauncher(t))
	}
	for _, fs := range []struct {
		name    string
		format  []string
		modules []string
	}{
		{"xfs", []string{"mkfs.xfs", "-q", "-f"}, nil},
		{"ext4", []string{"mkfs.ext4", "-q", "-F", "-m", "0", "-I", "256", "-O", "quota,project"},
			[]string{"kernel/fs/quota/quota_tree.ko", "kernel/fs/quota/quota_v2.ko"}},
	} {
		t.Run(fs.name, func(t *testing.T) {
			res := uml.Run(t, uml.Options{
				Binary:  bin,
				Args:    []string{"-test.run", "^TestSanity_Quota$", "-test.v", "-test.count=1"},
				Env:     append([]string{inUML + "=" + fs.name}, env...),
				Disks:   []uml.Disk{{Name: "data", Size: 512 << 20, Format: fs.format, MountOptions: "prjquota"}},
				Modules: fs.modules,
			})
			summary := regexp.MustCompile(`(?m)^(Ran \d+ of \d+ Specs.*|SUCCESS!.*|FAIL!.*)$`).FindAllString(res.Output, -1)
			t.Logf("UML %s, %s: %v", res.Kernel, fs.name, summary)
			if res.ExitCode != 0 || !regexp.MustCompile(`(?m)^--- PASS: TestSanity_Quota`).MatchString(res.Output) {
				t.Fatalf("csi-sanity inside UML failed (exit %d):\n%s", res.ExitCode, res.Output)
			}
		})
	}
}
