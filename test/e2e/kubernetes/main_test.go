// Package kubernetes is the end-to-end test of localdisk with real
// Kubernetes components: etcd, kube-apiserver, kube-controller-manager (PV
// binder and protection controllers only) and csi-provisioner in
// node-deployment mode with capacity tracking, configured from the
// manifests in deploy/kubernetes. There is no kubelet and no scheduler: the
// test registers the Node and CSINode as they would, and plays the
// scheduler by setting the selected-node annotation on PVCs.
//
// It runs as root (the plugin's PATH pool is a loop disk). The Kubernetes
// binaries come from hack/build-e2e-tools.sh (built once, then cached) and
// etcd from Debian (hack/install-test-deps.sh). When they cannot be had, or
// with -short, the test is skipped, except in CI (CI=true), where it fails.
package kubernetes

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/localdisk-csi/localdisk/test/testutil"
)

const (
	// ToolsEnv names a directory holding kube-apiserver,
	// kube-controller-manager and csi-provisioner to use instead of
	// building them.
	ToolsEnv = "LOCALDISK_E2E_TOOLS"
	// buildTimeout bounds hack/build-e2e-tools.sh on a cold machine.
	buildTimeout = 30 * time.Minute
)

func TestMain(m *testing.M) { testutil.Main(m) }

// inCI reports whether the test runs in CI, where it must not skip.
func inCI() bool { return os.Getenv("CI") == "true" }

// skipOrFail skips the test, or fails it in CI.
func skipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if inCI() {
		t.Fatalf(format+" (CI=true: the Kubernetes e2e test must run)", args...)
	}
	t.Skipf(format, args...)
}

// tools are the binaries the test runs.
type tools struct {
	dir  string // kube-apiserver, kube-controller-manager, csi-provisioner
	etcd string
}

// requireTools gates the test and finds or builds what it runs.
func requireTools(t *testing.T) tools {
	t.Helper()
	if testing.Short() && !inCI() {
		t.Skip("the Kubernetes e2e test does not run with -short")
	}
	testutil.RequireRoot(t)
	etcd, err := lookTool("etcd")
	if err != nil {
		skipOrFail(t, "etcd not found (run hack/install-test-deps.sh as root): %v", err)
	}
	if dir := os.Getenv(ToolsEnv); dir != "" {
		return tools{dir: dir, etcd: etcd}
	}
	root, err := testutil.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	timeout := buildTimeout
	if d, ok := t.Deadline(); ok && time.Until(d)-5*time.Minute < timeout {
		timeout = time.Until(d) - 5*time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	cmd := exec.CommandContext(ctx, "bash", filepath.Join(root, "hack", "build-e2e-tools.sh"))
	cmd.Dir = root
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		skipOrFail(t, "cannot build the Kubernetes tools with hack/build-e2e-tools.sh: %v\n%s", err, stderr.String())
	}
	dir := strings.TrimSpace(string(out))
	t.Logf("tools in %s (%v)", dir, time.Since(start).Round(time.Second))
	return tools{dir: dir, etcd: etcd}
}

// lookTool finds a command on PATH or in the sbin directories.
func lookTool(name string) (string, error) {
	path, err := exec.LookPath(name)
	if err == nil {
		return path, nil
	}
	for _, dir := range []string{"/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/local/bin", "/usr/bin"} {
		if fi, statErr := os.Stat(filepath.Join(dir, name)); statErr == nil && fi.Mode()&0o111 != 0 {
			return filepath.Join(dir, name), nil
		}
	}
	return "", err
}
