package quota

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/localdisk-csi/localdisk/driver/quota"
	"github.com/localdisk-csi/localdisk/test/testutil"
	"github.com/localdisk-csi/localdisk/test/uml"
)

// umlVolumeInodes is the volumes' inode limit in the UML pools.
const umlVolumeInodes = 1000

// inUML names the filesystem when this test binary runs inside UML.
const inUML = "LOCALDISK_QUOTA_IN_UML"

// umlFilesystems are the project-quota filesystems the host kernel cannot
// mount with prjquota, so they are tested inside user-mode Linux.
var umlFilesystems = []struct {
	name    string
	disk    uml.Disk
	modules []string
}{
	{"xfs", uml.Disk{Name: "data", Size: 400 << 20, Format: []string{"mkfs.xfs", "-q", "-f"}, MountOptions: "prjquota"}, nil},
	{"ext4", uml.Disk{Name: "data", Size: 400 << 20, Format: []string{"mkfs.ext4", "-q", "-F", "-m", "0", "-I", "256", "-O", "quota,project"},
		MountOptions: "prjquota"}, []string{"kernel/fs/quota/quota_tree.ko", "kernel/fs/quota/quota_v2.ko"}},
}

// umlInterface is what the plugin logs as its quota interface inside UML
// (whose kernel has quotactl_fd): without a filter, and under the
// launcher's ENOSYS filter.
var umlInterface = map[string]string{
	"":                     `quota="quotactl_fd(2)"`,
	testutil.SeccompENOSYS: `quota="quotactl(2) on the block device"`,
	testutil.SeccompLinux3: `quota="quotactl(2) on the block device"`,
}

// umlCommands is the quota command set the plugin logs for a pool, per
// mode: the generic commands, or, where the filter refuses them as a
// kernel before 4.1 does, XFS's own.
var umlCommands = map[string]string{
	"":                     `commands="generic quota commands"`,
	testutil.SeccompENOSYS: `commands="generic quota commands"`,
	testutil.SeccompLinux3: `commands="XFS quota commands (Q_XGETQUOTA, Q_XSETQLIM)"`,
}

// TestUML_ProjectQuotasEnforceCapacity boots user-mode Linux once per
// filesystem and runs TestInUML_Enforced there against the real plugin
// binary, on a disk mounted with prjquota; then once more per filesystem
// with the plugin under the seccomp launcher's ENOSYS filter, where it must
// set the quotas with quotactl(2) on UML's block device.
func TestUML_ProjectQuotasEnforceCapacity(t *testing.T) {
	if os.Getenv(inUML) != "" {
		t.Skip("already inside UML")
	}
	testutil.RequireRoot(t)
	uml.Require(t, "insmod", "mkfs.xfs", "mkfs.ext4")
	plugin := testutil.BuildPlugin(t)
	bin := uml.BuildTestBinary(t, "./test/quota")
	for _, mode := range []string{"", testutil.SeccompENOSYS, testutil.SeccompLinux3} {
		for _, fs := range umlFilesystems {
			if mode == testutil.SeccompLinux3 && fs.name != "xfs" {
				continue // ext4 has project quota only from 4.5: nothing to fall back to
			}
			name := fs.name
			env := []string{inUML + "=" + fs.name, testutil.BinEnv + "=" + plugin}
			if mode == "" {
				env = append(env, testutil.SeccompEnv+"="+testutil.SeccompOff)
			} else {
				name += "-" + mode
				env = append(env, testutil.SeccompEnv+"="+mode, testutil.LauncherEnv+"="+testutil.BuildLauncher(t))
			}
			t.Run(name, func(t *testing.T) {
				res := uml.Run(t, uml.Options{
					Binary:  bin,
					Args:    []string{"-test.run", "^TestInUML_", "-test.v", "-test.count=1"},
					Env:     env,
					Disks:   []uml.Disk{fs.disk},
					Modules: fs.modules,
				})
				t.Logf("UML kernel %s, %s:\n%s", res.Kernel, name, grepOutput(res.Output))
				if res.ExitCode != 0 || !regexp.MustCompile(`(?m)^--- PASS: TestInUML_Enforced`).MatchString(res.Output) {
					t.Fatalf("the test inside UML failed (exit %d):\n%s", res.ExitCode, res.Output)
				}
				for _, want := range []string{umlInterface[mode], umlCommands[mode]} {
					if !strings.Contains(res.Output, want) {
						t.Errorf("the plugin inside UML did not log %s", want)
					}
				}
			})
		}
	}
}

// grepOutput keeps the lines worth showing: the test's own and its verdicts.
func grepOutput(out string) string {
	var keep []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "_test.go:") || strings.HasPrefix(l, "---") || strings.HasPrefix(l, "===") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// TestInUML_Enforced runs inside UML: the plugin serves a PATH pool with
// quota: required on the prjquota disk, and the enforcement scenario runs.
func TestInUML_Enforced(t *testing.T) {
	fs := os.Getenv(inUML)
	if fs == "" {
		t.Skip("runs inside user-mode Linux (TestUML_ProjectQuotasEnforceCapacity)")
	}
	disk := os.Getenv("UML_DISK_DATA")
	dir := filepath.Join(disk, "t")
	root := filepath.Join(disk, "pool")
	for _, d := range []string{dir, root} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	e := startQuotaPool(t, dir, root, umlVolumeInodes)
	// The start-up line that names the interfaces (testutil has checked
	// it shows the fallbacks when under the seccomp launcher).
	for _, l := range testutil.GrepLog(e.p.Log(), "quota=") {
		if strings.Contains(l, "mount=") {
			t.Logf("%s, seccomp %q: plugin: %s", fs, testutil.Seccomp(), l)
		}
	}
	for _, l := range testutil.GrepLog(e.p.Log(), "commands=") {
		t.Logf("%s, seccomp %q: plugin: %s", fs, testutil.Seccomp(), l)
	}
	status := run(t, testutil.BuildPlugin(t), "status", "--endpoint", e.p.Address())
	t.Logf("%s: localdisk status:\n%s", fs, status)
	// QUOTA is the column before the last (SNAPSHOTS: a method, then the
	// count in brackets when there are snapshots).
	if !regexp.MustCompile(`(?m)\son\s+\S+( \(\d+\))?$`).MatchString(status) {
		t.Errorf("status does not show the quota on")
	}
	checkEnforced(t, e, umlVolumeInodes)
	// Delete freed the volumes' projects: no limit is left on the filesystem.
	qfs, err := quota.Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer qfs.Close()
	err = qfs.Projects(quota.DefaultFirstID, quota.DefaultLastID, func(id uint32, u quota.Usage) error {
		if u.Limits != (quota.Limits{}) {
			t.Errorf("project %d still has limits %+v after its volume was deleted", id, u.Limits)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func run(t *testing.T, bin string, args ...string) string {
	out, err := execCommand(bin, args...)
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", bin, args, err, out)
	}
	return out
}
