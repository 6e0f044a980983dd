package kubernetes

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	deploy "github.com/localdisk-csi/localdisk/deploy/kubernetes"
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
	ds          *appsv1.DaemonSet
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
	tl := cluster.RequireTools(t)
	dir := testutil.ShortTempDir(t)
	pathRoot := testutil.LoopDisk(t, dir, pathDiskMiB, "ext4")
	config := testutil.WriteConfig(t, dir, fmt.Sprintf(`pools:
- name: root
  kind: root
  path: %s/root
  capacity: %d
- name: path
  kind: path
  path: %s
`, dir, rootCapacity, pathRoot))
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	e := &env{ctx: ctx, ns: "e2e"}
	e.plugin = testutil.StartPlugin(t, testutil.BuildPlugin(t), testutil.PluginOptions{
		Endpoint: dir + "/csi.sock", NodeID: nodeName, StateDir: dir + "/state",
		ConfigPath: config, LogLevel: "info",
	})
	e.Cluster = cluster.Start(t, dir, tl)

	objs, err := deploy.Load()
	if err != nil {
		t.Fatal(err)
	}
	e.createManifests(t, objs)
	e.registerNode(t)
	e.createPod(t)
	e.startProvisioner(t, dir, tl.Dir)
	return e
}

// createManifests creates every object of deploy/kubernetes, so the API
// server validates them all, plus the test's namespace.
func (e *env) createManifests(t *testing.T, objs []deploy.Object) {
	t.Helper()
	for _, o := range objs {
		var err error
		switch obj := o.Object.(type) {
		case *corev1.Namespace:
			_, err = e.Admin.CoreV1().Namespaces().Create(e.ctx, obj, metav1.CreateOptions{})
		case *corev1.ServiceAccount:
			_, err = e.Admin.CoreV1().ServiceAccounts(obj.Namespace).Create(e.ctx, obj, metav1.CreateOptions{})
		case *corev1.ConfigMap:
			_, err = e.Admin.CoreV1().ConfigMaps(obj.Namespace).Create(e.ctx, obj, metav1.CreateOptions{})
		case *rbacv1.ClusterRole:
			_, err = e.Admin.RbacV1().ClusterRoles().Create(e.ctx, obj, metav1.CreateOptions{})
		case *rbacv1.ClusterRoleBinding:
			_, err = e.Admin.RbacV1().ClusterRoleBindings().Create(e.ctx, obj, metav1.CreateOptions{})
		case *rbacv1.Role:
			_, err = e.Admin.RbacV1().Roles(obj.Namespace).Create(e.ctx, obj, metav1.CreateOptions{})
		case *rbacv1.RoleBinding:
			_, err = e.Admin.RbacV1().RoleBindings(obj.Namespace).Create(e.ctx, obj, metav1.CreateOptions{})
		case *storagev1.CSIDriver:
			_, err = e.Admin.StorageV1().CSIDrivers().Create(e.ctx, obj, metav1.CreateOptions{})
		case *storagev1.StorageClass:
			_, err = e.Admin.StorageV1().StorageClasses().Create(e.ctx, obj, metav1.CreateOptions{})
			e.classes = append(e.classes, obj)
		case *appsv1.DaemonSet:
			// No DaemonSet controller runs: createPod makes its pod.
			e.ds, err = e.Admin.AppsV1().DaemonSets(obj.Namespace).Create(e.ctx, obj, metav1.CreateOptions{})
		default:
			t.Fatalf("%s: the test does not know how to create a %T", o.Name(), o.Object)
		}
		if err != nil {
			t.Fatalf("creating %s: %v", o.Name(), err)
		}
	}
	if e.ds == nil || len(e.classes) == 0 {
		t.Fatal("the manifests have no DaemonSet or no StorageClass")
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.ns}}
	if _, err := e.Admin.CoreV1().Namespaces().Create(e.ctx, ns, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

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
	if want := map[string]string{deploy.TopologyKey: nodeName}; !maps.Equal(e.segment, want) {
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

// createPod creates the DaemonSet's pod on the node, as the DaemonSet
// controller would (nothing runs it): csi-provisioner makes it the owner of
// its CSIStorageCapacity objects, and its service account token is bound to it.
func (e *env) createPod(t *testing.T) {
	t.Helper()
	tmpl := e.ds.Spec.Template.DeepCopy()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: e.ds.Name + "-e2e", Namespace: e.ds.Namespace, Labels: tmpl.Labels,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: "DaemonSet", Name: e.ds.Name, UID: e.ds.UID,
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
			}},
		},
		Spec: tmpl.Spec,
	}
	pod.Spec.NodeName = nodeName
	var err error
	if e.pod, err = e.Admin.CoreV1().Pods(pod.Namespace).Create(e.ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the DaemonSet's pod: %v", err)
	}
}

// startProvisioner runs csi-provisioner as the DaemonSet's container would:
// its arguments (the socket path aside), its environment from the
// downward API, and a token of the pod's service account, so it has exactly
// the permissions of the manifests' RBAC.
func (e *env) startProvisioner(t *testing.T, dir, toolsDir string) {
	t.Helper()
	var c *corev1.Container
	for i := range e.pod.Spec.Containers {
		if e.pod.Spec.Containers[i].Name == "csi-provisioner" {
			c = &e.pod.Spec.Containers[i]
		}
	}
	if c == nil {
		t.Fatal("the DaemonSet has no csi-provisioner container")
	}
	args := slices.Clone(c.Args)
	for i, a := range args {
		if strings.HasPrefix(a, "--csi-address=") {
			args[i] = "--csi-address=" + strings.TrimPrefix(e.plugin.Address(), "unix://")
		}
	}
	var env []string
	for _, v := range c.Env {
		value, err := e.fieldValue(v)
		if err != nil {
			t.Fatalf("csi-provisioner env %s: %v", v.Name, err)
		}
		env = append(env, v.Name+"="+value)
	}
	tr, err := e.Admin.CoreV1().ServiceAccounts(e.pod.Namespace).CreateToken(e.ctx, e.pod.Spec.ServiceAccountName,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
			ExpirationSeconds: ptr.To(int64(3600)),
			BoundObjectRef: &authenticationv1.BoundObjectReference{
				APIVersion: "v1", Kind: "Pod", Name: e.pod.Name, UID: e.pod.UID,
			},
		}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("requesting a token for the service account: %v", err)
	}
	kubeconfig := e.PKI.WriteKubeconfig(t, "csi-provisioner", e.URL, tr.Status.Token)
	// csi-provisioner reads $KUBECONFIG before --kubeconfig.
	env = append(env, "KUBECONFIG="+kubeconfig)
	e.provisioner = cluster.StartProcess(t, dir, "csi-provisioner", env, toolsDir+"/csi-provisioner", args...)
}

// fieldValue resolves an environment variable of the DaemonSet the way
// kubelet does for the pod: plain values and downward API fields.
func (e *env) fieldValue(v corev1.EnvVar) (string, error) {
	if v.ValueFrom == nil {
		return v.Value, nil
	}
	if v.ValueFrom.FieldRef == nil {
		return "", fmt.Errorf("only values and fieldRefs are supported")
	}
	switch v.ValueFrom.FieldRef.FieldPath {
	case "spec.nodeName":
		return e.pod.Spec.NodeName, nil
	case "metadata.namespace":
		return e.pod.Namespace, nil
	case "metadata.name":
		return e.pod.Name, nil
	}
	return "", fmt.Errorf("field %s is not supported", v.ValueFrom.FieldRef.FieldPath)
}

// class returns the manifests' StorageClass called name.
func (e *env) class(t *testing.T, name string) *storagev1.StorageClass {
	t.Helper()
	for _, sc := range e.classes {
		if sc.Name == name {
			return sc
		}
	}
	t.Fatalf("no StorageClass %s in the manifests", name)
	return nil
}
