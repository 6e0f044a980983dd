// Package kubernetes holds the manifests that install localdisk on a
// Kubernetes cluster (`kubectl apply -k deploy/kubernetes`) and its kustomize
// components (components/), renders them with kustomize's krusty (what
// `kubectl apply -k` runs, see build.go) and decodes the result, strictly,
// into k8s.io/api types (prometheus-operator's kinds and the
// VolumeSnapshotClass, whose types are not here, as unstructured objects): for the tests that check them and the Helm
// chart against them, for `make release`, which ships the render, and for
// the end-to-end tests (test/e2e/...) that create them in a real API server
// and run csi-provisioner with the DaemonSet's flags.
package kubernetes

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Names used by the manifests, which the tests check.
const (
	DriverName        = "localdisk.csi.io"
	Namespace         = "localdisk"
	KustomizationFile = "kustomization.yaml"
	// Image is the plugin's image without its tag, which is the
	// kustomization's (ImageTag).
	Image = "ghcr.io/localdisk-csi/localdisk"
)

// Object is one decoded manifest and the file it came from.
type Object struct {
	File   string
	Object runtime.Object
}

// Name is the object's namespace/name, for messages.
func (o Object) Name() string {
	m, err := metaOf(o.Object)
	if err != nil {
		return o.File + ": ?"
	}
	kind := o.Object.GetObjectKind().GroupVersionKind().Kind
	if m.GetNamespace() != "" {
		return fmt.Sprintf("%s: %s %s/%s", o.File, kind, m.GetNamespace(), m.GetName())
	}
	return fmt.Sprintf("%s: %s %s", o.File, kind, m.GetName())
}

func metaOf(obj runtime.Object) (metav1.Object, error) {
	m, ok := obj.(metav1.Object)
	if !ok {
		return nil, fmt.Errorf("%T has no object metadata", obj)
	}
	return m, nil
}

// kinds are the types the manifests may contain, by apiVersion and kind.
var kinds = map[string]func() runtime.Object{
	"v1/Namespace":      func() runtime.Object { return &corev1.Namespace{} },
	"v1/ServiceAccount": func() runtime.Object { return &corev1.ServiceAccount{} },
	"v1/ConfigMap":      func() runtime.Object { return &corev1.ConfigMap{} },
	"apps/v1/DaemonSet": func() runtime.Object { return &appsv1.DaemonSet{} },
	"rbac.authorization.k8s.io/v1/ClusterRole":        func() runtime.Object { return &rbacv1.ClusterRole{} },
	"rbac.authorization.k8s.io/v1/ClusterRoleBinding": func() runtime.Object { return &rbacv1.ClusterRoleBinding{} },
	"rbac.authorization.k8s.io/v1/Role":               func() runtime.Object { return &rbacv1.Role{} },
	"rbac.authorization.k8s.io/v1/RoleBinding":        func() runtime.Object { return &rbacv1.RoleBinding{} },
	"storage.k8s.io/v1/CSIDriver":                     func() runtime.Object { return &storagev1.CSIDriver{} },
	"storage.k8s.io/v1/StorageClass":                  func() runtime.Object { return &storagev1.StorageClass{} },
	// prometheus-operator's, from components/metrics.
	"monitoring.coreos.com/v1/PodMonitor":     func() runtime.Object { return &unstructured.Unstructured{} },
	"monitoring.coreos.com/v1/PrometheusRule": func() runtime.Object { return &unstructured.Unstructured{} },
	// external-snapshotter's (the snapshot CRDs), from volumesnapshotclass.yaml.
	"snapshot.storage.k8s.io/v1/VolumeSnapshotClass": func() runtime.Object { return &unstructured.Unstructured{} },
}

// Decode splits a multi-document YAML file and decodes each non-empty
// document strictly into the type its apiVersion and kind name.
func Decode(data []byte) ([]runtime.Object, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var objs []runtime.Object
	for i := 0; ; i++ {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			return nil, fmt.Errorf("document %d: %w", i, err)
		}
		if tm == (metav1.TypeMeta{}) {
			var rest any
			if err := yaml.Unmarshal(doc, &rest); err == nil && rest == nil {
				continue // only comments or blank
			}
		}
		newObj, ok := kinds[tm.APIVersion+"/"+tm.Kind]
		if !ok {
			return nil, fmt.Errorf("document %d: unexpected apiVersion %q kind %q", i, tm.APIVersion, tm.Kind)
		}
		obj := newObj()
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			return nil, fmt.Errorf("document %d (%s): %w", i, tm.Kind, err)
		}
		m, err := metaOf(obj)
		if err != nil {
			return nil, err
		}
		if m.GetName() == "" {
			return nil, fmt.Errorf("document %d (%s): metadata.name is missing", i, tm.Kind)
		}
		objs = append(objs, obj)
	}
}

// All returns the objects of type T, in order.
func All[T runtime.Object](objs []Object) []T {
	var out []T
	for _, o := range objs {
		if t, ok := o.Object.(T); ok {
			out = append(out, t)
		}
	}
	return out
}

// One returns the only object of type T, or an error if there is not
// exactly one.
func One[T runtime.Object](objs []Object) (T, error) {
	all := All[T](objs)
	if len(all) != 1 {
		var zero T
		return zero, fmt.Errorf("want exactly one %T, found %d", zero, len(all))
	}
	return all[0], nil
}
