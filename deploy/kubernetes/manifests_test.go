package kubernetes

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/pool"
)

func load(t *testing.T) []Object {
	t.Helper()
	objs, err := Load()
	if err != nil {
		t.Fatalf("decoding the manifests: %v", err)
	}
	return objs
}

func one[T runtime.Object](t *testing.T, objs []Object) T {
	t.Helper()
	o, err := One[T](objs)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestKustomization_ListsEveryFile(t *testing.T) {
	k, err := ReadKustomization()
	if err != nil {
		t.Fatal(err)
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Errorf("kustomization.yaml is %s %s, want kustomize.config.k8s.io/v1beta1 Kustomization", k.APIVersion, k.Kind)
	}
	// The directory on disk, not only what was embedded.
	onDisk, err := filepath.Glob("*.y*ml")
	if err != nil {
		t.Fatal(err)
	}
	onDisk = slices.DeleteFunc(onDisk, func(f string) bool { return f == KustomizationFile })
	embedded, err := Files()
	if err != nil {
		t.Fatal(err)
	}
	listed := slices.Clone(k.Resources)
	for _, s := range [][]string{onDisk, embedded, listed} {
		slices.Sort(s)
	}
	if !slices.Equal(listed, onDisk) || !slices.Equal(listed, embedded) {
		t.Errorf("kustomization.yaml lists %v; the directory holds %v (embedded: %v)", listed, onDisk, embedded)
	}
	if len(slices.Compact(slices.Clone(listed))) != len(listed) {
		t.Errorf("kustomization.yaml lists a file twice: %v", k.Resources)
	}
}

func TestDecode_RejectsUnknownFields(t *testing.T) {
	_, err := Decode([]byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata: {}\nspecc: 1\n"))
	if err == nil || !strings.Contains(err.Error(), "specc") {
		t.Errorf("Decode with an unknown field: err = %v, want one naming it", err)
	}
	_, err = Decode([]byte("apiVersion: v1\nkind: Pod\nmetadata:\n  name: x\n"))
	if err == nil {
		t.Error("Decode of a kind the manifests do not use: no error")
	}
}

func TestManifests_Namespaced(t *testing.T) {
	objs := load(t)
	if ns := one[*corev1.Namespace](t, objs); ns.Name != Namespace {
		t.Errorf("Namespace is %q, want %q", ns.Name, Namespace)
	}
	for _, o := range objs {
		m, _ := metaOf(o.Object)
		switch o.Object.(type) {
		case *corev1.Namespace, *rbacv1.ClusterRole, *rbacv1.ClusterRoleBinding,
			*storagev1.CSIDriver, *storagev1.StorageClass, *unstructured.Unstructured: // the VolumeSnapshotClass
			if m.GetNamespace() != "" {
				t.Errorf("%s: a cluster-scoped object has a namespace", o.Name())
			}
		default:
			if m.GetNamespace() != Namespace {
				t.Errorf("%s: namespace %q, want %q", o.Name(), m.GetNamespace(), Namespace)
			}
		}
	}
}

func TestCSIDriver(t *testing.T) {
	d := one[*storagev1.CSIDriver](t, load(t))
	s := d.Spec
	if d.Name != DriverName {
		t.Errorf("CSIDriver name %q, want %q", d.Name, DriverName)
	}
	check := func(field string, got *bool, want bool) {
		if got == nil || *got != want {
			t.Errorf("CSIDriver %s = %v, want %v", field, deref(got), want)
		}
	}
	check("attachRequired", s.AttachRequired, false)
	check("podInfoOnMount", s.PodInfoOnMount, true)
	check("storageCapacity", s.StorageCapacity, true)
	if s.FSGroupPolicy == nil || *s.FSGroupPolicy != storagev1.FileFSGroupPolicy {
		t.Errorf("CSIDriver fsGroupPolicy = %v, want File", deref(s.FSGroupPolicy))
	}
	if !slices.Equal(s.VolumeLifecycleModes, []storagev1.VolumeLifecycleMode{storagev1.VolumeLifecyclePersistent}) {
		t.Errorf("CSIDriver volumeLifecycleModes = %v, want [Persistent]", s.VolumeLifecycleModes)
	}
}

func TestStorageClasses(t *testing.T) {
	classes := All[*storagev1.StorageClass](load(t))
	var names []string
	for _, sc := range classes {
		names = append(names, sc.Name)
		kind, _ := strings.CutPrefix(sc.Name, "localdisk-")
		if sc.Provisioner != DriverName {
			t.Errorf("StorageClass %s: provisioner %q, want %q", sc.Name, sc.Provisioner, DriverName)
		}
		if want := map[string]string{layout.ParamKind: kind}; !mapsEqual(sc.Parameters, want) {
			t.Errorf("StorageClass %s: parameters %v, want %v", sc.Name, sc.Parameters, want)
		}
		if sc.VolumeBindingMode == nil || *sc.VolumeBindingMode != storagev1.VolumeBindingWaitForFirstConsumer {
			t.Errorf("StorageClass %s: volumeBindingMode %v, want WaitForFirstConsumer", sc.Name, deref(sc.VolumeBindingMode))
		}
		if sc.ReclaimPolicy == nil || *sc.ReclaimPolicy != corev1.PersistentVolumeReclaimDelete {
			t.Errorf("StorageClass %s: reclaimPolicy %v, want Delete", sc.Name, deref(sc.ReclaimPolicy))
		}
	}
	if want := []string{"localdisk-root", "localdisk-path", "localdisk-mount"}; !slices.Equal(names, want) {
		t.Errorf("StorageClasses %v, want %v", names, want)
	}
}

func TestConfigMap_PoolsFileIsValid(t *testing.T) {
	cm := one[*corev1.ConfigMap](t, load(t))
	data, ok := cm.Data["pools.yaml"]
	if !ok {
		t.Fatalf("ConfigMap %s has no pools.yaml: %v", cm.Name, cm.Data)
	}
	c, err := pool.Parse([]byte(data), "")
	if err != nil {
		t.Fatalf("pools.yaml: %v", err)
	}
	kinds := map[pool.Kind]bool{}
	for _, p := range c.Pools {
		kinds[p.Kind] = true
	}
	for _, k := range []pool.Kind{pool.Root, pool.Path, pool.Mount} {
		if !kinds[k] {
			t.Errorf("pools.yaml has no %s pool, so StorageClass localdisk-%s never gets capacity", k, k)
		}
	}
	CheckRootReserve(t, "the ConfigMap's pools.yaml", c)
}

// semverTag is a pinned image tag.
var semverTag = regexp.MustCompile(`^[a-z0-9.-]+(/[a-z0-9._-]+)+:v[0-9]+\.[0-9]+\.[0-9]+(@sha256:[0-9a-f]{64})?$`)

func TestDaemonSet_ImagesPinned(t *testing.T) {
	ds := one[*appsv1.DaemonSet](t, load(t))
	spec := ds.Spec.Template.Spec
	for _, c := range slices.Concat(spec.InitContainers, spec.Containers) {
		if !semverTag.MatchString(c.Image) || strings.HasSuffix(c.Image, ":latest") {
			t.Errorf("container %s: image %q is not pinned to a vX.Y.Z tag", c.Name, c.Image)
		}
		if c.ImagePullPolicy == corev1.PullAlways {
			t.Errorf("container %s: imagePullPolicy Always with a pinned image", c.Name)
		}
	}
	for name, prefix := range map[string]string{
		"node-driver-registrar": "registry.k8s.io/sig-storage/csi-node-driver-registrar:",
		"csi-provisioner":       "registry.k8s.io/sig-storage/csi-provisioner:",
		"csi-snapshotter":       "registry.k8s.io/sig-storage/csi-snapshotter:",
		"liveness-probe":        "registry.k8s.io/sig-storage/livenessprobe:",
	} {
		if c := container(t, ds, name); !strings.HasPrefix(c.Image, prefix) {
			t.Errorf("container %s: image %q, want %s…", name, c.Image, prefix)
		}
	}
}

func TestDaemonSet_Plugin(t *testing.T) {
	objs := load(t)
	ds := one[*appsv1.DaemonSet](t, objs)
	spec := ds.Spec.Template.Spec
	sel, err := metaLabelSelector(ds)
	if err != nil || !sel.Matches(labels.Set(ds.Spec.Template.Labels)) {
		t.Errorf("DaemonSet selector %v does not match its template's labels %v (%v)",
			ds.Spec.Selector, ds.Spec.Template.Labels, err)
	}
	if sa := one[*corev1.ServiceAccount](t, objs); spec.ServiceAccountName != sa.Name {
		t.Errorf("DaemonSet runs as %q, want the ServiceAccount %q", spec.ServiceAccountName, sa.Name)
	}
	c := container(t, ds, "localdisk")
	wantArgs := []string{"serve", "--endpoint=unix:///csi/csi.sock", "--node-id=$(NODE_NAME)",
		"--state-dir=/var/lib/localdisk", "--config=/etc/localdisk/pools.yaml", "--metrics-address=:9180"}
	if !slices.Equal(c.Args, wantArgs) {
		t.Errorf("localdisk args %q, want %q", c.Args, wantArgs)
	}
	if c.SecurityContext == nil || c.SecurityContext.Privileged == nil || !*c.SecurityContext.Privileged {
		t.Error("the localdisk container is not privileged")
	}
	checkFieldEnv(t, c, "NODE_NAME", "spec.nodeName")
	for _, m := range []struct {
		path, hostPath string
		propagation    corev1.MountPropagationMode
	}{
		{"/var/lib/kubelet", "/var/lib/kubelet", corev1.MountPropagationBidirectional},
		{"/dev", "/dev", ""},
		{"/var/lib/localdisk", "/var/lib/localdisk", ""},
		{"/csi", "/var/lib/kubelet/plugins/" + DriverName, ""},
	} {
		vm, vol := mount(t, ds, c, m.path)
		if vol.HostPath == nil || vol.HostPath.Path != m.hostPath {
			t.Errorf("localdisk: %s is volume %s, want hostPath %s", m.path, vol.Name, m.hostPath)
		}
		if m.propagation != "" && (vm.MountPropagation == nil || *vm.MountPropagation != m.propagation) {
			t.Errorf("localdisk: %s has mount propagation %v, want %s", m.path, deref(vm.MountPropagation), m.propagation)
		}
	}
	_, vol := mount(t, ds, c, "/etc/localdisk")
	if cm := one[*corev1.ConfigMap](t, objs); vol.ConfigMap == nil || vol.ConfigMap.Name != cm.Name {
		t.Errorf("/etc/localdisk is volume %s, want ConfigMap %s", vol.Name, cm.Name)
	}

	reg := container(t, ds, "node-driver-registrar")
	if !slices.Contains(reg.Args, "--kubelet-registration-path=/var/lib/kubelet/plugins/"+DriverName+"/csi.sock") {
		t.Errorf("node-driver-registrar args %q lack the kubelet's path of the socket", reg.Args)
	}
	if _, vol := mount(t, ds, reg, "/registration"); vol.HostPath == nil || vol.HostPath.Path != "/var/lib/kubelet/plugins_registry" {
		t.Errorf("node-driver-registrar: /registration is not /var/lib/kubelet/plugins_registry")
	}
	for _, name := range []string{"node-driver-registrar", "csi-provisioner", "csi-snapshotter", "liveness-probe"} {
		c := container(t, ds, name)
		if !slices.Contains(c.Args, "--csi-address=/csi/csi.sock") {
			t.Errorf("%s args %q lack --csi-address=/csi/csi.sock", name, c.Args)
		}
		mount(t, ds, c, "/csi")
	}
}

func TestDaemonSet_Provisioner(t *testing.T) {
	ds := one[*appsv1.DaemonSet](t, load(t))
	c := container(t, ds, "csi-provisioner")
	for _, flag := range []string{"--node-deployment", "--enable-capacity", "--capacity-ownerref-level=0",
		"--strict-topology", "--immediate-topology=false"} {
		if !slices.Contains(c.Args, flag) {
			t.Errorf("csi-provisioner args %q lack %s", c.Args, flag)
		}
	}
	for _, a := range c.Args {
		// A directory volume takes its pool's filesystem type or none: a
		// default fs_type would be refused wherever it differs.
		if strings.HasPrefix(a, "--default-fstype") {
			t.Errorf("csi-provisioner arg %s: directory pools take no fs_type", a)
		}
		if strings.Contains(a, "leader-election") {
			t.Errorf("csi-provisioner arg %s: one provisioner per node needs no leader election", a)
		}
	}
	checkFieldEnv(t, c, "NODE_NAME", "spec.nodeName")
	checkFieldEnv(t, c, "NAMESPACE", "metadata.namespace")
	checkFieldEnv(t, c, "POD_NAME", "metadata.name")
}

func TestRBAC(t *testing.T) {
	objs := load(t)
	sa := one[*corev1.ServiceAccount](t, objs)
	can := map[string]bool{} // "group/resource/verb" -> granted
	grant := func(rules []rbacv1.PolicyRule) {
		for _, r := range rules {
			for _, g := range r.APIGroups {
				for _, res := range r.Resources {
					for _, v := range r.Verbs {
						can[g+"/"+res+"/"+v] = true
					}
				}
			}
		}
	}
	for _, b := range All[*rbacv1.ClusterRoleBinding](objs) {
		checkSubject(t, b.Name, b.Subjects, sa)
		role := findByName(All[*rbacv1.ClusterRole](objs), b.RoleRef.Name)
		if b.RoleRef.Kind != "ClusterRole" || role == nil {
			t.Errorf("ClusterRoleBinding %s: roleRef %s %s is not in the manifests", b.Name, b.RoleRef.Kind, b.RoleRef.Name)
			continue
		}
		grant(role.Rules)
	}
	for _, b := range All[*rbacv1.RoleBinding](objs) {
		checkSubject(t, b.Name, b.Subjects, sa)
		role := findByName(All[*rbacv1.Role](objs), b.RoleRef.Name)
		if b.RoleRef.Kind != "Role" || role == nil {
			t.Errorf("RoleBinding %s: roleRef %s %s is not in the manifests", b.Name, b.RoleRef.Kind, b.RoleRef.Name)
			continue
		}
		grant(role.Rules)
	}
	for _, need := range []string{
		"/persistentvolumes/create", "/persistentvolumes/delete", "/persistentvolumes/watch",
		"/persistentvolumeclaims/update", "/persistentvolumeclaims/watch",
		"storage.k8s.io/storageclasses/watch", "/events/create",
		"storage.k8s.io/csistoragecapacities/create", "storage.k8s.io/csistoragecapacities/update",
		"storage.k8s.io/csistoragecapacities/delete", "storage.k8s.io/csistoragecapacities/watch",
		"/pods/get",
		// csi-provisioner, for PVCs restored from snapshots.
		"snapshot.storage.k8s.io/volumesnapshots/get", "snapshot.storage.k8s.io/volumesnapshots/update",
		"snapshot.storage.k8s.io/volumesnapshotcontents/get",
		// csi-snapshotter.
		"snapshot.storage.k8s.io/volumesnapshotclasses/watch", "snapshot.storage.k8s.io/volumesnapshotcontents/watch",
		"snapshot.storage.k8s.io/volumesnapshotcontents/update", "snapshot.storage.k8s.io/volumesnapshotcontents/status/update",
	} {
		if !can[need] {
			t.Errorf("RBAC does not grant %s", need)
		}
	}
	for granted := range can {
		if strings.Contains(granted, "*") || strings.Contains(granted, "secrets") ||
			strings.HasPrefix(granted, "groupsnapshot.storage.k8s.io/") || strings.Contains(granted, "leases") {
			t.Errorf("RBAC grants %s: more than the sidecars need", granted)
		}
	}
}

// The e2e test (test/e2e/kubernetes) runs the csi-provisioner and the
// csi-snapshotter that hack/tools/csi-provisioner and
// hack/tools/csi-snapshotter pin: the DaemonSet must run the same releases.
func TestDaemonSet_SidecarsMatchE2E(t *testing.T) {
	ds := one[*appsv1.DaemonSet](t, load(t))
	for _, s := range []struct{ container, gomod, module string }{
		{"csi-provisioner", "csi-provisioner", `github\.com/kubernetes-csi/external-provisioner/v\d+`},
		{"csi-snapshotter", "csi-snapshotter", `github\.com/kubernetes-csi/external-snapshotter/v\d+`},
	} {
		data, err := os.ReadFile("../../hack/tools/" + s.gomod + "/go.mod")
		if err != nil {
			t.Fatal(err)
		}
		m := regexp.MustCompile(`(?m)^\s*` + s.module + ` (v\S+)`).FindSubmatch(data)
		if m == nil {
			t.Fatalf("hack/tools/%s/go.mod does not require %s", s.gomod, s.module)
		}
		if c := container(t, ds, s.container); !strings.HasSuffix(c.Image, ":"+string(m[1])) {
			t.Errorf("%s image %s, but the e2e test runs %s", s.container, c.Image, m[1])
		}
	}
}
