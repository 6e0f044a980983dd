package kubernetes

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	deploy "github.com/localdisk-csi/localdisk/deploy/kubernetes"
	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/test/e2e/cluster"
	"github.com/localdisk-csi/localdisk/test/testutil"
)

const (
	nodeName = "localdisk-e2e-node"
	// rootCapacity is the ROOT pool's configured capacity.
	rootCapacity = 1 << 30
	// pathDiskMiB is the size of the PATH pool's loop disk.
	pathDiskMiB = 256
)

// env is one node with localdisk and its csi-provisioner, and the control
// plane they talk to.
type env struct {
	*cluster.Cluster
	ctx         context.Context // ends with the test
	plugin      *testutil.Plugin
	provisioner *cluster.Process
	others      []*cluster.Process // more components that must keep running (snapshots)
	dir         string             // the test's files
	tools       cluster.Tools
	deployment  *cluster.Deployment
	pod         *corev1.Pod // the DaemonSet's pod on the node, owner of CSIStorageCapacity
	classes     []*storagev1.StorageClass
	nodeID      string
	segment     map[string]string // the node's topology segment, from NodeGetInfo
	ns          string            // namespace of the test's PVCs
}

// setup starts everything. Cleanups stop it in reverse order: the
// provisioner, the control plane, the plugin, then the loop disk and the
// directory.
func setup(t *testing.T) *env {
	t.Helper()
	return setupPools(t, func(dir string) string {
		pathRoot := testutil.LoopDisk(t, dir, pathDiskMiB, "ext4")
		return fmt.Sprintf(`pools:
- name: root
  kind: root
  path: %s/root
  capacity: %d
- name: path
  kind: path
  path: %s
`, dir, rootCapacity, pathRoot)
	})
}

// setupPools is setup with the pools file that pools writes, given the
// test's directory (it makes the loop disks there).
func setupPools(t *testing.T, pools func(dir string) string) *env {
	t.Helper()
	tl := cluster.RequireTools(t)
	dir := testutil.ShortTempDir(t)
	config := testutil.WriteConfig(t, dir, pools(dir))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	e := &env{ctx: ctx, ns: "e2e", dir: dir, tools: tl}
	e.plugin = testutil.StartPlugin(t, testutil.BuildPlugin(t), testutil.PluginOptions{
		Endpoint: dir + "/csi.sock", NodeID: nodeName, StateDir: dir + "/state",
		ConfigPath: config, LogLevel: "info",
	})
	e.Cluster = cluster.Start(t, dir, tl)

	e.deployment = e.CreateManifests(t, e.ctx, e.ns)
	e.classes = e.deployment.Classes
	e.registerNode(t)
	e.CreateDaemonSetPod(t, e.ctx, e.deployment, nodeName, nil)
	e.pod = e.deployment.Pod
	e.provisioner = e.StartProvisioner(t, e.ctx, e.deployment, dir, tl.Dir, e.socket())
	return e
}

// socket is the path of the plugin's socket.
func (e *env) socket() string { return strings.TrimPrefix(e.plugin.Address(), "unix://") }

// registerNode creates the Node, as kubelet does, and its CSINode with the
// plugin's entry and topology label, as kubelet does when
// node-driver-registrar registers the plugin, from NodeGetInfo.
func (e *env) registerNode(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, rpcTimeout)
	defer cancel()
	info, err := e.plugin.Node().NodeGetInfo(ctx, &csi.NodeGetInfoRequest{})
	if err != nil {
		t.Fatalf("NodeGetInfo: %v", err)
	}
	plugin, err := e.plugin.Identity().GetPluginInfo(ctx, &csi.GetPluginInfoRequest{})
	if err != nil {
		t.Fatalf("GetPluginInfo: %v", err)
	}
	if plugin.GetName() != deploy.DriverName {
		t.Fatalf("the plugin is called %q, the manifests %q", plugin.GetName(), deploy.DriverName)
	}
	e.nodeID = info.GetNodeId()
	e.segment = info.GetAccessibleTopology().GetSegments()
	if want := map[string]string{layout.TopologyKey: nodeName}; !maps.Equal(e.segment, want) {
		t.Fatalf("NodeGetInfo topology %v, want %v", e.segment, want)
	}
	labels := map[string]string{"kubernetes.io/hostname": nodeName, "kubernetes.io/os": "linux"}
	maps.Copy(labels, e.segment)
	node, err := e.Admin.CoreV1().Nodes().Create(e.ctx, &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: nodeName, Labels: labels},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	driver := storagev1.CSINodeDriver{
		Name: plugin.GetName(), NodeID: e.nodeID,
		TopologyKeys: slices.Sorted(maps.Keys(e.segment)),
	}
	if n := info.GetMaxVolumesPerNode(); n > 0 {
		driver.Allocatable = &storagev1.VolumeNodeResources{Count: ptr.To(int32(n))}
	}
	_, err = e.Admin.StorageV1().CSINodes().Create(e.ctx, &storagev1.CSINode{
		ObjectMeta: metav1.ObjectMeta{Name: nodeName, OwnerReferences: []metav1.OwnerReference{{
			APIVersion: "v1", Kind: "Node", Name: node.Name, UID: node.UID,
		}}},
		Spec: storagev1.CSINodeSpec{Drivers: []storagev1.CSINodeDriver{driver}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

// class returns the manifests' StorageClass called name.
func (e *env) class(t *testing.T, name string) *storagev1.StorageClass {
	t.Helper()
	return e.deployment.Class(t, name)
}
