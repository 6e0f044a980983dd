package node

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	deploy "github.com/localdisk-csi/localdisk/deploy/kubernetes"
	"github.com/localdisk-csi/localdisk/test/e2e/cluster"
	"github.com/localdisk-csi/localdisk/test/testutil"
)

const (
	// nodeName is the Node's name and localdisk's node ID.
	nodeName = "localdisk-e2e-node"
	// rootCapacity is the ROOT pool's configured capacity.
	rootCapacity = 1 << 30
	mi           = int64(1) << 20
	// Loop disks: the PATH pool's btrfs (quota: required), the MOUNT
	// pool's mounted ext4 disk and the device pool's blank device, larger
	// than the ext4 disk so that a small filesystem volume gets the ext4 disk.
	pathDiskMiB   = 512
	mountDiskMiB  = 64
	deviceDiskMiB = 128
	// testNS holds the test's PVCs and pods.
	testNS = "e2e"
	// notHere keeps the DaemonSet's pod off kubelet: csi-provisioner runs as
	// that pod (its token is bound to it) but as a host process, so kubelet
	// must reject the pod at admission instead of running its containers
	// (whose images are not here) and hostPath volumes.
	notHere = "localdisk.csi.io/e2e-no-such-label"
)

// env is the cluster with its one node, localdisk and csi-provisioner.
type env struct {
	*cluster.Cluster
	t           *testing.T // the whole test's, for what outlives a scenario
	ctx         context.Context
	dir         string
	plugin      *testutil.Plugin
	cri         *containerd
	kubelet     *kubelet
	scheduler   *cluster.Process
	provisioner *cluster.Process
	deployment  *cluster.Deployment
	rootDir     string // the ROOT pool
	pathDisk    string // the PATH pool: btrfs with quotas
	mountDisk   string // the MOUNT pool's disk: an ext4 disk mounted here
	device      string // the device pool's loop device
}

// setup starts everything; the cleanups stop it in reverse order. The
// last one registered, so the first to run, deletes the test's pods and
// waits until kubelet has torn them down.
func setup(t *testing.T) *env {
	t.Helper()
	tl := cluster.RequireTools(t)
	for _, b := range []string{"kubelet", "kube-scheduler"} {
		if _, err := os.Stat(filepath.Join(tl.Dir, b)); err != nil {
			cluster.SkipOrFail(t, "%s not in %s: %v", b, tl.Dir, err)
		}
	}
	if _, err := os.Stat(busyboxBin); err != nil {
		cluster.SkipOrFail(t, "busybox-static not installed (hack/install-test-deps.sh): %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	removeIfNew(t, "/var/lib/kubelet") // kubelet's fixed device-plugins and default pki dirs
	removeIfNew(t, "/run/containerd")  // containerd 1.6's fixed shim socket dir
	dir := testutil.ShortTempDir(t)
	e := &env{t: t, ctx: ctx, dir: dir, rootDir: filepath.Join(dir, "root")}
	images := buildImages(t, dir)

	e.pathDisk = testutil.LoopDisk(t, dir, pathDiskMiB, "btrfs")
	// The MOUNT pool's disk is given by path, as in the shipped ConfigMap:
	// an ext4 disk the operator mounted (staged with its staging mark).
	e.mountDisk = testutil.LoopDisk(t, dir, mountDiskMiB, "ext4")
	e.device = testutil.LoopDevice(t, dir, deviceDiskMiB)
	config := testutil.WriteConfig(t, dir, fmt.Sprintf(`pools:
- name: root
  kind: root
  path: %s
  capacity: %d
- name: path
  kind: path
  path: %s
  quota: required
- name: disks
  kind: mount
  disks:
  - path: %s
- name: raw
  kind: mount
  disks:
  - device: %s
    fsType: ext4
`, e.rootDir, rootCapacity, e.pathDisk, e.mountDisk, e.device))

	// The node lifecycle controller lifts the not-ready taint that the API
	// server's TaintNodesByCondition puts on a new Node, once kubelet
	// reports it Ready.
	e.Cluster = cluster.Start(t, dir, tl, "node-lifecycle-controller")
	e.scheduler = cluster.StartProcess(t, dir, "kube-scheduler", nil, filepath.Join(tl.Dir, "kube-scheduler"),
		"--kubeconfig="+e.PKI.WriteKubeconfig(t, "kube-scheduler", e.URL, e.PKI.AdminToken),
		"--leader-elect=false", "--secure-port=0", "--v=2")
	keepSysctls(t)
	keepIptables(t)
	e.cri = startContainerd(t, dir, images)
	e.kubelet = startKubelet(t, dir, filepath.Join(tl.Dir, "kubelet"), e.Cluster, e.cri)

	endpoint := filepath.Join(e.kubelet.root, "plugins", deploy.DriverName, "csi.sock")
	if err := os.MkdirAll(filepath.Dir(endpoint), 0o750); err != nil {
		t.Fatal(err)
	}
	e.plugin = testutil.StartPlugin(t, testutil.BuildPlugin(t), testutil.PluginOptions{
		Endpoint: endpoint, NodeID: nodeName, StateDir: filepath.Join(dir, "state"),
		ConfigPath: config, LogLevel: "info",
	})
	t.Cleanup(e.keepPluginLog)

	e.deployment = e.CreateManifests(t, ctx, testNS)
	if _, err := e.Admin.CoreV1().ServiceAccounts(testNS).Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: "default"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitNodeReady(t, 3*time.Minute)
	e.kubelet.register(t, endpoint)
	e.CreateDaemonSetPod(t, ctx, e.deployment, nodeName, func(p *corev1.Pod) {
		p.Spec.NodeSelector = map[string]string{notHere: "true"}
	})
	// Restarted in scenario 7: a link of its own, as kubelet's.
	keepBinary(t, filepath.Join(tl.Dir, "csi-provisioner"), filepath.Join(dir, "csi-provisioner"))
	e.provisioner = e.StartProvisioner(t, ctx, e.deployment, dir, dir, endpoint)
	t.Cleanup(func() { e.deleteAllPods(t) })
	return e
}

// keepPluginLog copies localdisk's log into the artifacts directory.
func (e *env) keepPluginLog() {
	if dir := os.Getenv(cluster.ArtifactsEnv); dir != "" {
		if data, err := os.ReadFile(e.plugin.LogPath); err == nil {
			_ = os.WriteFile(filepath.Join(dir, "localdisk.log"), data, 0o644)
		}
	}
}

// waitNodeReady waits for the Node to be Ready.
func (e *env) waitNodeReady(t *testing.T, timeout time.Duration) {
	t.Helper()
	e.waitFor(t, "node "+nodeName+" Ready", timeout, func() (bool, string) {
		n, err := e.Admin.CoreV1().Nodes().Get(e.ctx, nodeName, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				return c.Status == corev1.ConditionTrue, fmt.Sprintf("Ready=%s: %s %s", c.Status, c.Reason, c.Message)
			}
		}
		return false, "no Ready condition"
	})
}

// deleteAllPods deletes the test's pods and waits until kubelet has torn
// them down (unpublished and unstaged their volumes), so that the
// cleanups after it find no mount of a pod.
func (e *env) deleteAllPods(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pods := e.Admin.CoreV1().Pods(testNS)
	if err := pods.DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(1))}, metav1.ListOptions{}); err != nil {
		t.Errorf("deleting the test's pods: %v", err)
		return
	}
	for {
		list, err := pods.List(ctx, metav1.ListOptions{})
		if err == nil && len(list.Items) == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Errorf("the test's pods were not deleted within 2m: %v", err)
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
	// kubelet unstages a volume shortly after its last pod is gone.
	deadline := time.Now().Add(time.Minute)
	for len(testutil.Mounts(t, filepath.Join(e.kubelet.root, "plugins"))) > 0 && time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
	}
	if left := testutil.Mounts(t, filepath.Join(e.kubelet.root, "plugins")); len(left) > 0 {
		t.Errorf("kubelet left staged volumes after their pods were deleted: %v", left)
	}
}

// removeIfNew removes dir when the test ends if it did not exist before:
// kubelet and containerd make directories of their own at fixed paths,
// whatever their configured roots, and the test leaves nothing behind. It
// is registered first, so it runs after every component has stopped;
// anything still mounted below dir keeps it (and fails the test).
func removeIfNew(t *testing.T, dir string) {
	if _, err := os.Lstat(dir); err == nil {
		return
	}
	t.Cleanup(func() {
		if _, err := os.Lstat(dir); err != nil {
			return // not made after all
		}
		if mps, err := testutil.ListMounts(dir); err != nil || len(mps) > 0 {
			t.Errorf("not removing %s: still mounted below it: %v %v", dir, mps, err)
			return
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("removing %s: %v", dir, err)
		}
	})
}
