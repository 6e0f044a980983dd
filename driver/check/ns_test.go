package check

import (
	"encoding/json"
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

// In a child started by inNewNamespace, childDirEnv names the directory to
// check the propagation of, and childPrivateEnv=1 makes every mount of the
// child's namespace private first.
const (
	childDirEnv     = "LOCALDISK_CHECK_CHILD_DIR"
	childPrivateEnv = "LOCALDISK_CHECK_CHILD_PRIVATE"
)

// TestMain runs the child of the namespace tests when asked to, and keeps
// the findings independent of whether this machine has a kubelet: its
// directory, for the shared-filesystem warning, is one that never exists.
func TestMain(m *testing.M) {
	if dir := os.Getenv(childDirEnv); dir != "" {
		os.Exit(child(dir))
	}
	kubeletDir = "/nonexistent/localdisk-test/kubelet"
	os.Exit(m.Run())
}

// child runs the propagation check in the new mount namespace and prints
// its finding as JSON.
func child(dir string) int {
	if os.Getenv(childPrivateEnv) == "1" {
		if err := unix.Mount("", "/", "", unix.MS_PRIVATE|unix.MS_REC, ""); err != nil {
			fmt.Fprintln(os.Stderr, "make / private:", err)
			return 3
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(propagation(realHost, dir)); err != nil {
		return 3
	}
	return 0
}

// inNewNamespace runs the propagation check on dir in a child process in a
// new mount namespace (a copy of this one: a shared mount stays a peer of
// its original), private all through if private.
func inNewNamespace(t *testing.T, dir string, private bool) Finding {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childDirEnv+"="+dir)
	if private {
		cmd.Env = append(cmd.Env, childPrivateEnv+"=1")
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS}
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("the child: %v: %s", err, out)
	}
	var f Finding
	if err := json.Unmarshal(out, &f); err != nil {
		t.Fatalf("the child printed %q: %v", out, err)
	}
	return f
}

// sharedDir makes a directory that is a shared mount of its own (a bind
// onto itself, in its own peer group), as kubelet's directory is on a host
// where the plugin's container mounts it Bidirectional.
func sharedDir(t *testing.T) string {
	t.Helper()
	testutil.RequireRoot(t)
	dir := filepath.Join(testutil.ShortTempDir(t), "kubelet")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	testutil.SelfBind(t, dir, unix.MS_SHARED)
	return dir
}

// TestPropagationInNamespace runs the real probe in a mount namespace of
// its own, as a container has: with shared propagation the bind reaches PID
// 1's namespace, with private propagation it does not, and the check says
// so; either way the probe leaves nothing behind.
func TestPropagationInNamespace(t *testing.T) {
	dir := sharedDir(t)
	for _, tc := range []struct {
		private bool
		level   Level
		want    string
	}{
		{false, OK, "is visible in PID 1's mount namespace"},
		{true, Fail, "is not visible in PID 1's mount namespace"},
	} {
		t.Run(fmt.Sprintf("private=%v", tc.private), func(t *testing.T) {
			f := inNewNamespace(t, dir, tc.private)
			if f.Level != tc.level || !strings.Contains(f.Message, tc.want) || !strings.Contains(f.Message, "not PID 1's") {
				t.Errorf("got %v, want %s with %q", f, tc.level, tc.want)
			}
			if ms := testutil.Mounts(t, dir); len(ms) != 1 {
				t.Errorf("mounts under %s after the probe: %q, want only the directory's own", dir, ms)
			}
			if entries, err := os.ReadDir(dir); err != nil || len(entries) != 0 {
				t.Errorf("%s holds %v after the probe (%v)", dir, entries, err)
			}
		})
	}
}
