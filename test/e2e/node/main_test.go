// Package node is the end-to-end test of localdisk on a real Kubernetes
// node: etcd, kube-apiserver, kube-controller-manager and kube-scheduler,
// kubelet on Debian's containerd and runc with the CNI plugins bridge,
// host-local and loopback, localdisk as a host process registered with
// kubelet through its plugin registration API (a fixture in place of
// node-driver-registrar, which the module proxy does not serve), and
// csi-provisioner in node-deployment mode, all configured from the
// manifests in deploy/kubernetes. Pods run images the test builds as OCI
// archives and imports into containerd: a sandbox image from a static
// pause binary (./pause) and a workload image from Debian's busybox-static.
//
// It runs as root. The Kubernetes binaries come from
// hack/build-e2e-tools.sh (built once, then cached), the rest from Debian
// (hack/install-test-deps.sh). When they cannot be had, or with -short, the
// test is skipped, except in CI (CI=true), where it fails. With
// LOCALDISK_E2E_ARTIFACTS=DIR, the components' logs and YAML dumps of the
// objects after each scenario are kept in DIR.
package node

import (
	"testing"

	"github.com/localdisk-csi/localdisk/test/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }
