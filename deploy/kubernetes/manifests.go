// Package kubernetes holds the manifests that install localdisk on a
// Kubernetes cluster (`kubectl apply -k deploy/kubernetes`) and decodes them,
// strictly, into k8s.io/api types: for the test that checks them, and for
// the end-to-end test (test/e2e/kubernetes) that creates them in a real API
// server and runs csi-provisioner with the DaemonSet's flags.
package kubernetes

import (
	"bufio"
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// Names used by the manifests, which the tests check.
const (
	DriverName        = "localdisk.csi.io"
	TopologyKey       = "topology.localdisk.csi.io/node"
	Namespace         = "localdisk"
	KustomizationFile = "kustomization.yaml"
)

// files are the manifests, compiled in so that a test binary needs no source tree.
//
//go:embed *.yaml
var files embed.FS

// Kustomization is the part of kustomization.yaml that this directory uses;
// anything else in the file is an error.
type Kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
}

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
}

// ReadKustomization decodes kustomization.yaml strictly.
func ReadKustomization() (*Kustomization, error) {
	data, err := files.ReadFile(KustomizationFile)
	if err != nil {
		return nil, err
	}
	var k Kustomization
	if err := yaml.UnmarshalStrict(data, &k); err != nil {
		return nil, fmt.Errorf("%s: %w", KustomizationFile, err)
	}
	return &k, nil
}

// Files lists the manifest files (every *.yaml but kustomization.yaml).
func Files() ([]string, error) {
	entries, err := files.ReadDir(".")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if e.Name() != KustomizationFile {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// Load decodes every document of every file that kustomization.yaml lists,
// in its order, into its k8s.io/api type. Unknown kinds, unknown or
// duplicate fields and documents without a name are errors.
func Load() ([]Object, error) {
	k, err := ReadKustomization()
	if err != nil {
		return nil, err
	}
	var objs []Object
	for _, file := range k.Resources {
		data, err := files.ReadFile(file)
		if err != nil {
			return nil, err
		}
		docs, err := Decode(data)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", file, err)
		}
		for _, obj := range docs {
			objs = append(objs, Object{File: file, Object: obj})
		}
	}
	return objs, nil
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
