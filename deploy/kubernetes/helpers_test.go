package kubernetes

import (
	"maps"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
)

// container returns the DaemonSet's container called name.
func container(t *testing.T, ds *appsv1.DaemonSet, name string) *corev1.Container {
	t.Helper()
	for i, c := range ds.Spec.Template.Spec.Containers {
		if c.Name == name {
			return &ds.Spec.Template.Spec.Containers[i]
		}
	}
	t.Fatalf("DaemonSet %s has no container %q", ds.Name, name)
	return nil
}

// mount returns c's volume mount at path and the pod volume it mounts.
func mount(t *testing.T, ds *appsv1.DaemonSet, c *corev1.Container, path string) (*corev1.VolumeMount, *corev1.Volume) {
	t.Helper()
	for i, m := range c.VolumeMounts {
		if m.MountPath != path {
			continue
		}
		for j, v := range ds.Spec.Template.Spec.Volumes {
			if v.Name == m.Name {
				return &c.VolumeMounts[i], &ds.Spec.Template.Spec.Volumes[j]
			}
		}
		t.Fatalf("container %s mounts volume %q, which the pod does not have", c.Name, m.Name)
	}
	t.Fatalf("container %s mounts nothing at %s", c.Name, path)
	return nil, nil
}

// checkFieldEnv checks that c's variable name comes from the downward API
// field fieldPath.
func checkFieldEnv(t *testing.T, c *corev1.Container, name, fieldPath string) {
	t.Helper()
	for _, e := range c.Env {
		if e.Name != name {
			continue
		}
		if e.ValueFrom == nil || e.ValueFrom.FieldRef == nil || e.ValueFrom.FieldRef.FieldPath != fieldPath {
			t.Errorf("container %s: %s does not come from the field %s", c.Name, name, fieldPath)
		}
		return
	}
	t.Errorf("container %s has no environment variable %s (from %s)", c.Name, name, fieldPath)
}

// checkSubject checks that a binding grants its role to the ServiceAccount.
func checkSubject(t *testing.T, binding string, subjects []rbacv1.Subject, sa *corev1.ServiceAccount) {
	t.Helper()
	want := rbacv1.Subject{Kind: "ServiceAccount", Name: sa.Name, Namespace: sa.Namespace}
	if len(subjects) != 1 || subjects[0] != want {
		t.Errorf("binding %s: subjects %+v, want only %+v", binding, subjects, want)
	}
}

// findByName returns the object called name, or nil.
func findByName[T metav1.Object](objs []T, name string) T {
	for _, o := range objs {
		if o.GetName() == name {
			return o
		}
	}
	var zero T
	return zero
}

func metaLabelSelector(ds *appsv1.DaemonSet) (labels.Selector, error) {
	return metav1.LabelSelectorAsSelector(ds.Spec.Selector)
}

func mapsEqual(a, b map[string]string) bool { return maps.Equal(a, b) }

// deref shows a pointer's value in messages ("<nil>" when nil).
func deref[T any](p *T) any {
	if p == nil {
		return "<nil>"
	}
	return *p
}
