// Package kubernetes is the end-to-end test of localdisk with real
// Kubernetes components: etcd, kube-apiserver, kube-controller-manager (PV
// binder and protection controllers only) and csi-provisioner in
// node-deployment mode with capacity tracking, configured from the
// manifests in deploy/kubernetes. There is no kubelet and no scheduler: the
// test registers the Node and CSINode as they would, and plays the
// scheduler by setting the selected-node annotation on PVCs. TestSnapshots
// adds snapshot-controller and the DaemonSet's csi-snapshotter, and writes
// and reads volumes through the plugin's node service, as kubelet would.
//
// It runs as root (the plugin's PATH pool is a loop disk). The Kubernetes
// binaries come from hack/build-e2e-tools.sh (built once, then cached) and
// etcd from Debian (hack/install-test-deps.sh); package test/e2e/cluster
// starts them. When they cannot be had, or
// with -short, the test is skipped, except in CI (CI=true), where it fails.
package kubernetes

import (
	"testing"

	"github.com/localdisk-csi/localdisk/test/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }
