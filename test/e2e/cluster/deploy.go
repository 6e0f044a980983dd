package cluster

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"

	deploy "github.com/localdisk-csi/localdisk/deploy/kubernetes"
)

// Deployment is deploy/kubernetes created in the cluster, and the
// DaemonSet's pod on the test's node that csi-provisioner runs as.
type Deployment struct {
	DS      *appsv1.DaemonSet
	Pod     *corev1.Pod // owner of the CSIStorageCapacity objects
	Classes []*storagev1.StorageClass
	// SnapshotClasses are the names of the VolumeSnapshotClasses.
	SnapshotClasses []string
}

// CreateManifests creates every object of deploy/kubernetes, so the API
// server validates them all, plus the namespace ns for the test's objects.
// The VolumeSnapshotClass needs the snapshot CRDs: it installs them first
// (InstallSnapshotCRDs).
func (c *Cluster) CreateManifests(t *testing.T, ctx context.Context, ns string) *Deployment {
	t.Helper()
	objs, err := deploy.Load()
	if err != nil {
		t.Fatal(err)
	}
	d := &Deployment{}
	c.InstallSnapshotCRDs(t, ctx)
	for _, o := range objs {
		var err error
		switch obj := o.Object.(type) {
		case *corev1.Namespace:
			_, err = c.Admin.CoreV1().Namespaces().Create(ctx, obj, metav1.CreateOptions{})
		case *corev1.ServiceAccount:
			_, err = c.Admin.CoreV1().ServiceAccounts(obj.Namespace).Create(ctx, obj, metav1.CreateOptions{})
		case *corev1.ConfigMap:
			_, err = c.Admin.CoreV1().ConfigMaps(obj.Namespace).Create(ctx, obj, metav1.CreateOptions{})
		case *rbacv1.ClusterRole:
			_, err = c.Admin.RbacV1().ClusterRoles().Create(ctx, obj, metav1.CreateOptions{})
		case *rbacv1.ClusterRoleBinding:
			_, err = c.Admin.RbacV1().ClusterRoleBindings().Create(ctx, obj, metav1.CreateOptions{})
		case *rbacv1.Role:
			_, err = c.Admin.RbacV1().Roles(obj.Namespace).Create(ctx, obj, metav1.CreateOptions{})
		case *rbacv1.RoleBinding:
			_, err = c.Admin.RbacV1().RoleBindings(obj.Namespace).Create(ctx, obj, metav1.CreateOptions{})
		case *storagev1.CSIDriver:
			_, err = c.Admin.StorageV1().CSIDrivers().Create(ctx, obj, metav1.CreateOptions{})
		case *storagev1.StorageClass:
			_, err = c.Admin.StorageV1().StorageClasses().Create(ctx, obj, metav1.CreateOptions{})
			d.Classes = append(d.Classes, obj)
		case *unstructured.Unstructured:
			err = c.createUnstructured(t, ctx, obj)
			d.SnapshotClasses = append(d.SnapshotClasses, obj.GetName())
		case *appsv1.DaemonSet:
			// No DaemonSet controller runs: CreateDaemonSetPod makes its pod.
			d.DS, err = c.Admin.AppsV1().DaemonSets(obj.Namespace).Create(ctx, obj, metav1.CreateOptions{})
		default:
			t.Fatalf("%s: the test does not know how to create a %T", o.Name(), o.Object)
		}
		if err != nil {
			t.Fatalf("creating %s: %v", o.Name(), err)
		}
	}
	if d.DS == nil || len(d.Classes) == 0 {
		t.Fatal("the manifests have no DaemonSet or no StorageClass")
	}
	nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
	if _, err := c.Admin.CoreV1().Namespaces().Create(ctx, nsObj, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	return d
}

// CreateDaemonSetPod creates the DaemonSet's pod on node, as the DaemonSet
// controller would: csi-provisioner makes it the owner of its
// CSIStorageCapacity objects, and its service account token is bound to
// it. mutate, when not nil, changes the pod before it is created.
func (c *Cluster) CreateDaemonSetPod(t *testing.T, ctx context.Context, d *Deployment, node string, mutate func(*corev1.Pod)) {
	t.Helper()
	tmpl := d.DS.Spec.Template.DeepCopy()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name: d.DS.Name + "-e2e", Namespace: d.DS.Namespace, Labels: tmpl.Labels,
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "apps/v1", Kind: "DaemonSet", Name: d.DS.Name, UID: d.DS.UID,
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
			}},
		},
		Spec: tmpl.Spec,
	}
	pod.Spec.NodeName = node
	if mutate != nil {
		mutate(pod)
	}
	var err error
	if d.Pod, err = c.Admin.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating the DaemonSet's pod: %v", err)
	}
}

// StartProvisioner runs csi-provisioner as the DaemonSet's container would:
// its arguments (the socket path aside: csiAddress), its environment from
// the downward API, and a token of the pod's service account, so it has
// exactly the permissions of the manifests' RBAC.
func (c *Cluster) StartProvisioner(t *testing.T, ctx context.Context, d *Deployment, dir, toolsDir, csiAddress string) *Process {
	t.Helper()
	return c.StartSidecar(t, ctx, d, "csi-provisioner", dir, toolsDir, csiAddress)
}

// StartSidecar runs the DaemonSet's container name (csi-provisioner,
// csi-snapshotter) from the binary of that name in toolsDir, as
// StartProvisioner describes.
func (c *Cluster) StartSidecar(t *testing.T, ctx context.Context, d *Deployment, name, dir, toolsDir, csiAddress string) *Process {
	t.Helper()
	var ctr *corev1.Container
	for i := range d.Pod.Spec.Containers {
		if d.Pod.Spec.Containers[i].Name == name {
			ctr = &d.Pod.Spec.Containers[i]
		}
	}
	if ctr == nil {
		t.Fatalf("the DaemonSet has no %s container", name)
	}
	args := slices.Clone(ctr.Args)
	for i, a := range args {
		if strings.HasPrefix(a, "--csi-address=") {
			args[i] = "--csi-address=" + csiAddress
		}
	}
	var env []string
	for _, v := range ctr.Env {
		value, err := fieldValue(d.Pod, v)
		if err != nil {
			t.Fatalf("%s env %s: %v", name, v.Name, err)
		}
		env = append(env, v.Name+"="+value)
	}
	tr, err := c.Admin.CoreV1().ServiceAccounts(d.Pod.Namespace).CreateToken(ctx, d.Pod.Spec.ServiceAccountName,
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
			ExpirationSeconds: ptr.To(int64(3600)),
			BoundObjectRef: &authenticationv1.BoundObjectReference{
				APIVersion: "v1", Kind: "Pod", Name: d.Pod.Name, UID: d.Pod.UID,
			},
		}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("requesting a token for the service account: %v", err)
	}
	kubeconfig := c.PKI.WriteKubeconfig(t, name, c.URL, tr.Status.Token)
	// csi-provisioner reads $KUBECONFIG before --kubeconfig; csi-snapshotter
	// only --kubeconfig.
	env = append(env, "KUBECONFIG="+kubeconfig)
	if name != "csi-provisioner" {
		args = append(args, "--kubeconfig="+kubeconfig)
	}
	return StartProcess(t, dir, name, env, toolsDir+"/"+name, args...)
}

// fieldValue resolves an environment variable of the DaemonSet the way
// kubelet does for the pod: plain values and downward API fields.
func fieldValue(pod *corev1.Pod, v corev1.EnvVar) (string, error) {
	if v.ValueFrom == nil {
		return v.Value, nil
	}
	if v.ValueFrom.FieldRef == nil {
		return "", fmt.Errorf("only values and fieldRefs are supported")
	}
	switch v.ValueFrom.FieldRef.FieldPath {
	case "spec.nodeName":
		return pod.Spec.NodeName, nil
	case "metadata.namespace":
		return pod.Namespace, nil
	case "metadata.name":
		return pod.Name, nil
	}
	return "", fmt.Errorf("field %s is not supported", v.ValueFrom.FieldRef.FieldPath)
}

// Class returns the StorageClass called name of the manifests.
func (d *Deployment) Class(t *testing.T, name string) *storagev1.StorageClass {
	t.Helper()
	for _, sc := range d.Classes {
		if sc.Name == name {
			return sc
		}
	}
	t.Fatalf("no StorageClass %s in the manifests", name)
	return nil
}
