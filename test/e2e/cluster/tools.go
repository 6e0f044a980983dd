// Package cluster runs, for the Kubernetes end-to-end tests, the
// components they share: it finds or builds the Kubernetes binaries
// (hack/build-e2e-tools.sh, cached) and etcd (Debian), starts etcd,
// kube-apiserver and kube-controller-manager on loopback with a PKI made
// for the test, installs the VolumeSnapshot CRDs with the manifests and
// runs snapshot-controller and the DaemonSet's sidecars on demand, and runs
// processes in their own process groups, stopped and their logs kept
// (LOCALDISK_E2E_ARTIFACTS) when the test ends.
package cluster

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
	// kube-controller-manager, kube-scheduler, kubelet, csi-provisioner,
	// csi-snapshotter, snapshot-controller and crds/ (the VolumeSnapshot
	// CRDs) to use instead of building them.
	ToolsEnv = "LOCALDISK_E2E_TOOLS"
	// buildTimeout bounds hack/build-e2e-tools.sh on a cold machine.
	buildTimeout = 30 * time.Minute
)

// InCI reports whether the test runs in CI, where it must not skip.
func InCI() bool { return os.Getenv("CI") == "true" }

// SkipOrFail skips the test, or fails it in CI.
func SkipOrFail(t *testing.T, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf(format+" (CI=true: the Kubernetes e2e tests must run)", args...)
	}
	t.Skipf(format, args...)
}

// Tools are the binaries the tests run.
type Tools struct {
	// kube-apiserver, kube-controller-manager, kube-scheduler, kubelet,
	// csi-provisioner, csi-snapshotter, snapshot-controller; the
	// VolumeSnapshot CRDs in crds/ (SnapshotCRDs).
	Dir  string
	Etcd string
}

// RequireTools gates the test and finds or builds what it runs.
func RequireTools(t *testing.T) Tools {
	t.Helper()
	if testing.Short() && !InCI() {
		t.Skip("the Kubernetes e2e tests do not run with -short")
	}
	testutil.RequireRoot(t)
	etcd, err := LookTool("etcd")
	if err != nil {
		SkipOrFail(t, "etcd not found (run hack/install-test-deps.sh as root): %v", err)
	}
	if dir := os.Getenv(ToolsEnv); dir != "" {
		return Tools{Dir: dir, Etcd: etcd}
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
		SkipOrFail(t, "cannot build the Kubernetes tools with hack/build-e2e-tools.sh: %v\n%s", err, stderr.String())
	}
	dir := strings.TrimSpace(string(out))
	t.Logf("tools in %s (%v)", dir, time.Since(start).Round(time.Second))
	return Tools{Dir: dir, Etcd: etcd}
}

// LookTool finds a command on PATH or in the sbin directories.
func LookTool(name string) (string, error) {
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
