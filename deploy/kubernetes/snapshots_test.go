package kubernetes

import (
	"encoding/json"
	corev1 "k8s.io/api/core/v1"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// volumeSnapshotClasses returns the VolumeSnapshotClasses among objs.
func volumeSnapshotClasses(objs []Object) []*unstructured.Unstructured {
	var out []*unstructured.Unstructured
	for _, u := range All[*unstructured.Unstructured](objs) {
		if gvk := u.GroupVersionKind(); gvk.Group == "snapshot.storage.k8s.io" && gvk.Kind == "VolumeSnapshotClass" {
			out = append(out, u)
		}
	}
	return out
}

func TestVolumeSnapshotClass(t *testing.T) {
	classes := volumeSnapshotClasses(load(t))
	if len(classes) != 1 {
		t.Fatalf("%d VolumeSnapshotClasses, want 1", len(classes))
	}
	c := classes[0]
	if v := c.GetAPIVersion(); v != "snapshot.storage.k8s.io/v1" {
		t.Errorf("VolumeSnapshotClass %s: apiVersion %s, want snapshot.storage.k8s.io/v1", c.GetName(), v)
	}
	driver, _, _ := unstructured.NestedString(c.Object, "driver")
	policy, _, _ := unstructured.NestedString(c.Object, "deletionPolicy")
	if driver != DriverName || policy != "Delete" {
		t.Errorf("VolumeSnapshotClass %s: driver %q, deletionPolicy %q; want %q and Delete", c.GetName(), driver, policy, DriverName)
	}
	if _, ok := c.Object["parameters"]; ok {
		t.Errorf("VolumeSnapshotClass %s has parameters: a snapshot is always taken in its volume's pool", c.GetName())
	}
}

func TestDaemonSet_Snapshotter(t *testing.T) {
	ds := one[*appsv1.DaemonSet](t, load(t))
	c := container(t, ds, "csi-snapshotter")
	// Each node's snapshotter takes the snapshots of its own volumes only.
	for _, flag := range []string{"--csi-address=/csi/csi.sock", "--node-deployment",
		"--feature-gates=CSIVolumeGroupSnapshot=false"} {
		if !slices.Contains(c.Args, flag) {
			t.Errorf("csi-snapshotter args %q lack %s", c.Args, flag)
		}
	}
	for _, a := range c.Args {
		if strings.Contains(a, "leader-election") {
			t.Errorf("csi-snapshotter arg %s: --node-deployment refuses leader election", a)
		}
	}
	checkFieldEnv(t, c, "NODE_NAME", "spec.nodeName")
	p := container(t, ds, "csi-provisioner")
	for _, a := range p.Args {
		if a == "--snapshot-orphan-sweep-interval=0" {
			t.Errorf("csi-provisioner arg %s: the sweep of the snapshots' finalizers is off", a)
		}
	}
}

// The component no-snapshots leaves out the snapshotter, its RBAC and the
// VolumeSnapshotClass, and changes nothing else.
func TestComponents_NoSnapshots(t *testing.T) {
	objs, err := LoadWith(ComponentNoSnapshots)
	if err != nil {
		t.Fatal(err)
	}
	base := load(t)
	var want []Object
	for _, o := range base {
		switch obj := o.Object.(type) {
		case *unstructured.Unstructured:
			if obj.GetKind() == "VolumeSnapshotClass" {
				continue
			}
		case *rbacv1.ClusterRole:
			if obj.Name == "localdisk-snapshotter" {
				continue
			}
		case *rbacv1.ClusterRoleBinding:
			if obj.Name == "localdisk-snapshotter" {
				continue
			}
		case *appsv1.DaemonSet:
			ds := obj.DeepCopy()
			spec := &ds.Spec.Template.Spec
			before := len(spec.Containers)
			spec.Containers = slices.DeleteFunc(spec.Containers, func(c corev1.Container) bool { return c.Name == "csi-snapshotter" })
			if len(spec.Containers) != before-1 {
				t.Fatal("the base's DaemonSet has no csi-snapshotter")
			}
			o = Object{File: o.File, Object: ds}
		}
		want = append(want, o)
	}
	if len(objs) != len(want) || len(want) != len(base)-3 {
		t.Fatalf("with no-snapshots: %d objects, want %d (the base's %d less 3)", len(objs), len(want), len(base))
	}
	for i, o := range objs {
		got, err := json.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		w, err := json.Marshal(want[i].Object)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(w) {
			t.Errorf("%s with no-snapshots:\n%s\nwant\n%s", o.Name(), got, w)
		}
	}
}
