package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

const (
	// SeccompEnv names an environment variable that, set to "enosys" or
	// "eperm", makes every plugin the tests start run under the seccomp
	// launcher (test/seccomp/launcher): the new mount API and
	// quotactl_fd(2) then fail with that errno, and the plugin must fall
	// back to mount(2) and quotactl(2). Unset, empty or "off": no filter.
	SeccompEnv = "LOCALDISK_TEST_SECCOMP"

	// LauncherEnv names an environment variable that gives the path of a
	// launcher binary for BuildLauncher to return instead of building one
	// (inside user-mode Linux, for example).
	LauncherEnv = "LOCALDISK_TEST_LAUNCHER"

	// The seccomp modes (PluginOptions.Seccomp, LOCALDISK_TEST_SECCOMP).
	SeccompOff    = "off"
	SeccompENOSYS = "enosys"
	SeccompEPERM  = "eperm"
	// SeccompLinux3 is SeccompENOSYS, and also quotactl(2) refusing the
	// generic commands on project quotas (EINVAL), as kernels before 4.1
	// (RHEL and CentOS 7's 3.10) do: XFS project quotas then go through
	// XFS's own commands.
	SeccompLinux3 = "linux3"
)

// SeccompModes are the modes that run under the launcher.
var SeccompModes = []string{SeccompENOSYS, SeccompEPERM}

// Seccomp returns the mode LOCALDISK_TEST_SECCOMP asks for: "enosys",
// "eperm", or "" (no filter). Any other value is returned as is, and makes
// every plugin start fail the test.
func Seccomp() string {
	v := strings.ToLower(strings.TrimSpace(os.Getenv(SeccompEnv)))
	if v == SeccompOff {
		return ""
	}
	return v
}

// seccompErrno is the launcher's -errno for a mode.
func seccompErrno(mode string) (unix.Errno, error) {
	switch mode {
	case SeccompENOSYS, SeccompLinux3:
		return unix.ENOSYS, nil
	case SeccompEPERM:
		return unix.EPERM, nil
	}
	return 0, fmt.Errorf("seccomp mode %q: want %q, %q or %q (%s)", mode, SeccompENOSYS, SeccompEPERM, SeccompOff, SeccompEnv)
}

// launcherBuild is the one build of the launcher per test binary.
var launcherBuild struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// BuildLauncher returns the path of the seccomp launcher built from
// ./test/seccomp/launcher with CGO_ENABLED=0, building it the first time it
// is called in a test binary only (Main and MainWithBuilds remove it). If
// LOCALDISK_TEST_LAUNCHER is set, it returns that path instead.
func BuildLauncher(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv(LauncherEnv); bin != "" {
		abs, err := filepath.Abs(bin)
		if err == nil {
			_, err = os.Stat(abs)
		}
		if err != nil {
			t.Fatalf("%s=%s: %v", LauncherEnv, bin, err)
		}
		return abs
	}
	launcherBuild.once.Do(func() {
		launcherBuild.dir, launcherBuild.bin, launcherBuild.err = buildLauncher()
	})
	if launcherBuild.err != nil {
		t.Fatalf("building the seccomp launcher: %v", launcherBuild.err)
	}
	return launcherBuild.bin
}

func buildLauncher() (dir, bin string, err error) {
	return goBuild("launcher", "./test/seccomp/launcher", true)
}

// removeLauncher removes the launcher BuildLauncher built, if any.
func removeLauncher() {
	if launcherBuild.dir != "" {
		if err := os.RemoveAll(launcherBuild.dir); err != nil {
			fmt.Fprintf(os.Stderr, "testutil: removing %s: %v\n", launcherBuild.dir, err)
		}
	}
}

// SeccompCommand returns the program and arguments that run bin with args
// under the launcher in the given mode: mode "" or "off" returns bin and
// args unchanged. Use it with exec.Command where a test starts the plugin
// itself.
func SeccompCommand(t testing.TB, mode, bin string, args []string) (string, []string) {
	t.Helper()
	if mode == "" || mode == SeccompOff {
		return bin, args
	}
	errno, err := seccompErrno(mode)
	if err != nil {
		t.Fatal(err)
	}
	flags := []string{"-errno", unix.ErrnoName(errno)}
	if mode == SeccompLinux3 {
		flags = append(flags, "-no-generic-prjquota")
	}
	return BuildLauncher(t), append(append(flags, "--", bin), args...)
}

// FallbackLine is the start-up line with which the plugin says it makes
// binds with mount(2).
const FallbackLine = "the new mount API cannot be used here"

// CheckSeccompLog checks that log (what one plugin process wrote) shows
// the fallbacks that the filter of mode forces: binds with mount(2) because
// open_tree failed with the mode's errno, and project quotas through
// quotactl(2). Mode "" or "off" checks nothing.
func CheckSeccompLog(mode, log string) error {
	if mode == "" || mode == SeccompOff {
		return nil
	}
	errno, err := seccompErrno(mode)
	if err != nil {
		return err
	}
	lines := GrepLog(log, FallbackLine)
	if len(lines) == 0 {
		return fmt.Errorf("seccomp %s: the plugin did not log %q: was the filter installed?", mode, FallbackLine)
	}
	want := []string{`mount="mount(2)"`, `quota="quotactl(2) on the block device"`,
		fmt.Sprintf(`reason="open_tree: %s"`, errno.Error())}
	for _, w := range want {
		if !strings.Contains(lines[0], w) {
			return fmt.Errorf("seccomp %s: the plugin's start-up line lacks %s: %s", mode, w, lines[0])
		}
	}
	return nil
}
