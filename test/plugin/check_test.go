package plugin

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/localdisk-csi/localdisk/test/testutil"
)

type finding struct{ Level, Subject, Message string }

// runCheck runs `localdisk check ARGS -o json` (in a new mount namespace
// if ns) and returns its findings and exit status.
func runCheck(t *testing.T, ns bool, args ...string) ([]finding, int) {
	t.Helper()
	cmd := exec.Command(testutil.BuildPlugin(t), append([]string{"check", "-o", "json"}, args...)...)
	if ns {
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS}
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	if code == 2 { // a usage error: nothing checked
		return nil, code
	}
	var fs []finding
	if err := json.Unmarshal(out, &fs); err != nil {
		t.Fatalf("localdisk check printed %q (stderr %q): %v", out, stderr.String(), err)
	}
	return fs, code
}

func level(fs []finding, subject string) string {
	for _, f := range fs {
		if f.Subject == subject {
			return f.Level
		}
	}
	return ""
}

// TestCheck runs the real binary: exit status 0 when the plugin can serve,
// 1 when it cannot, and nothing written to the state dir or the pools.
func TestCheck(t *testing.T) {
	testutil.RequireRoot(t)
	dir := testutil.ShortTempDir(t)
	data := testutil.LoopDisk(t, dir, 64, "ext4")
	state := filepath.Join(dir, "state")
	good := testutil.WriteConfig(t, dir, fmt.Sprintf("pools:\n- {name: root, kind: root, path: %s/root}\n- {name: data, kind: path, path: %s}\n", dir, data))

	fs, code := runCheck(t, false, "--state-dir", state, "--config", good)
	if code != 0 || level(fs, "pool data") != "ok" || level(fs, "state-dir") != "ok" {
		t.Errorf("exit %d, findings %v", code, fs)
	}
	if _, err := os.Stat(state); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the check made the state dir: %v", err)
	}
	if _, err := os.Stat(filepath.Join(data, "localdisk")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the check initialised the PATH pool: %v", err)
	}

	// serve on the same configuration logs the same findings and starts.
	p := testutil.StartPlugin(t, testutil.BuildPlugin(t), testutil.PluginOptions{
		Endpoint: filepath.Join(dir, "csi.sock"), NodeID: "node-1", StateDir: state, ConfigPath: good,
	})
	p.Stop()
	log, err := os.ReadFile(p.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(log), "check=\"pool data\"") || !strings.Contains(string(log), "check=propagation") {
		t.Errorf("serve did not log the findings:\n%s", log)
	}

	// The disk gone: its pool, now initialised, is unhealthy.
	testutil.UnplugDisk(t, data)
	fs, code = runCheck(t, false, "--state-dir", state, "--config", good)
	if code != 1 || level(fs, "pool data") != "fail" || level(fs, "pool root") != "ok" {
		t.Errorf("exit %d, findings %v", code, fs)
	}

	bad := testutil.WriteConfig(t, dir, "pools: []\n")
	if fs, code = runCheck(t, false, "--state-dir", state, "--config", bad); code != 1 || level(fs, "config") != "fail" {
		t.Errorf("a bad pools file: exit %d, findings %v", code, fs)
	}
	if _, code = runCheck(t, false, "--output", "yaml"); code != 2 {
		t.Errorf("a bad --output: exit %d, want 2", code)
	}
}

// TestCheckPropagation runs the binary in a mount namespace of its own
// whose mounts are all private, as in a container without
// mountPropagation: Bidirectional: its binds do not reach PID 1's
// namespace, and the check fails.
func TestCheckPropagation(t *testing.T) {
	testutil.RequireRoot(t)
	dir := testutil.ShortTempDir(t)
	target := filepath.Join(dir, "kubelet")
	if err := os.Mkdir(target, 0o755); err != nil {
		t.Fatal(err)
	}
	// Private here: the child's copy is no peer of it.
	testutil.SelfBind(t, target, unix.MS_PRIVATE)
	args := []string{"--state-dir", filepath.Join(dir, "state"), "--target-dir", target}
	fs, code := runCheck(t, true, args...)
	if code != 1 || level(fs, "propagation") != "fail" {
		t.Errorf("private: exit %d, findings %v", code, fs)
	}
	if err := unix.Mount("", target, "", unix.MS_SHARED, ""); err != nil {
		t.Fatal(err)
	}
	fs, code = runCheck(t, true, args...)
	if code != 0 || level(fs, "propagation") != "ok" {
		t.Errorf("shared: exit %d, findings %v", code, fs)
	}
	if ms := testutil.Mounts(t, target); len(ms) != 1 {
		t.Errorf("mounts under %s after the checks: %q", target, ms)
	}
}

// Without CAP_SYS_ADMIN no bind can be made, whichever way: check fails
// (instead of reporting a mount path that would never work).
func TestCheck_WithoutCapSysAdmin(t *testing.T) {
	testutil.RequireRoot(t)
	setpriv, err := exec.LookPath("setpriv")
	if err != nil {
		t.Skip("no setpriv (util-linux)")
	}
	dir := testutil.ShortTempDir(t)
	bin := testutil.BuildPlugin(t)
	out, err := exec.Command(setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", "--",
		bin, "check", "--state-dir", filepath.Join(dir, "state")).CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 1 {
		t.Fatalf("check as nobody: %v, want exit status 1\n%s", err, out)
	}
	if !strings.Contains(string(out), "lacks CAP_SYS_ADMIN") {
		t.Errorf("check as nobody does not say it lacks CAP_SYS_ADMIN:\n%s", out)
	}
}
