package kubernetes

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// The kustomize components under components/, which an overlay adds to the
// base (`components:`).
const (
	// ComponentMetrics adds a PodMonitor and a PrometheusRule.
	ComponentMetrics = "metrics"
	// ComponentKubeletDir moves kubelet's dir to /var/lib/k0s/kubelet.
	ComponentKubeletDir = "kubelet-dir"
	// ComponentNoSnapshots leaves out the csi-snapshotter sidecar, the
	// VolumeSnapshotClass and the snapshotter's RBAC.
	ComponentNoSnapshots = "no-snapshots"
)

// files are the manifests and the components, compiled in so that a test
// binary needs no source tree.
//
//go:embed *.yaml components
var files embed.FS

// Kustomization is a kustomization.yaml (kustomize's own type).
type Kustomization = types.Kustomization

// In the in-memory filesystem that krusty reads: the base (this directory)
// and the overlay that Build writes when it adds components or a tag.
const (
	baseDir    = "/localdisk"
	overlayDir = "/overlay"
)

// ReadKustomization decodes the base's kustomization.yaml strictly.
func ReadKustomization() (*Kustomization, error) {
	return readKustomization(KustomizationFile)
}

func readKustomization(name string) (*Kustomization, error) {
	data, err := files.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var k Kustomization
	if err := yaml.UnmarshalStrict(data, &k); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &k, nil
}

// Files lists the base's manifest files (every *.yaml of this directory but
// kustomization.yaml).
func Files() ([]string, error) {
	entries, err := files.ReadDir(".")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if !e.IsDir() && e.Name() != KustomizationFile {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// Components lists the components (the directories under components/).
func Components() ([]string, error) {
	entries, err := files.ReadDir("components")
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if e.IsDir() {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// ImageTag is the plugin's image tag that the base sets (its images:).
func ImageTag() (string, error) {
	k, err := ReadKustomization()
	if err != nil {
		return "", err
	}
	for _, img := range k.Images {
		if img.Name == Image {
			return img.NewTag, nil
		}
	}
	return "", fmt.Errorf("%s: no images: entry for %s", KustomizationFile, Image)
}

// Build renders the base as `kubectl kustomize deploy/kubernetes` does,
// with the given components (names under components/) and, unless
// imageTag is "", the plugin's image tag replaced: as an overlay with
// `components:` and `images:` would.
func Build(imageTag string, components ...string) ([]byte, error) {
	fsys := filesys.MakeFsInMemory()
	err := fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		return fsys.WriteFile(path.Join(baseDir, p), data)
	})
	if err != nil {
		return nil, err
	}
	dir := baseDir
	if imageTag != "" || len(components) > 0 {
		known, err := Components()
		if err != nil {
			return nil, err
		}
		overlay := Kustomization{
			TypeMeta:  types.TypeMeta{APIVersion: types.KustomizationVersion, Kind: types.KustomizationKind},
			Resources: []string{"../" + path.Base(baseDir)},
		}
		for _, c := range components {
			if !slices.Contains(known, c) {
				return nil, fmt.Errorf("no component %q (there are %v)", c, known)
			}
			overlay.Components = append(overlay.Components, path.Join("..", path.Base(baseDir), "components", c))
		}
		if imageTag != "" {
			overlay.Images = []types.Image{{Name: Image, NewTag: imageTag}}
		}
		data, err := yaml.Marshal(overlay)
		if err != nil {
			return nil, err
		}
		if err := fsys.WriteFile(path.Join(overlayDir, KustomizationFile), data); err != nil {
			return nil, err
		}
		dir = overlayDir
	}
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("kustomize build: %w", err)
	}
	return m.AsYaml()
}

// Load renders the base (Build("")) and decodes every object into its
// k8s.io/api type, in kustomize's order (namespaces, RBAC and
// configuration before the DaemonSet that uses them). Unknown kinds,
// unknown or duplicate fields and documents without a name are errors.
func Load() ([]Object, error) { return LoadWith() }

// LoadWith is Load with components added. The objects of kinds whose types
// k8s.io/api lacks (the VolumeSnapshotClass, prometheus-operator's) are
// *unstructured.Unstructured.
func LoadWith(components ...string) ([]Object, error) {
	data, err := Build("", components...)
	if err != nil {
		return nil, err
	}
	docs, err := Decode(data)
	if err != nil {
		return nil, fmt.Errorf("the kustomize build: %w", err)
	}
	origin, err := origins()
	if err != nil {
		return nil, err
	}
	objs := make([]Object, 0, len(docs))
	for _, obj := range docs {
		m, err := metaOf(obj)
		if err != nil {
			return nil, err
		}
		file := origin[objectKey(obj.GetObjectKind().GroupVersionKind().Kind, m.GetName())]
		if file == "" {
			file = "?"
		}
		objs = append(objs, Object{File: file, Object: obj})
	}
	return objs, nil
}

func objectKey(kind, name string) string { return kind + "/" + name }

// origins maps kind/name to the embedded file (relative to this
// directory) that declares the object, for Object.File.
func origins() (map[string]string, error) {
	out := map[string]string{}
	err := fs.WalkDir(files, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Base(p) == KustomizationFile {
			return err
		}
		data, err := files.ReadFile(p)
		if err != nil {
			return err
		}
		for _, doc := range strings.Split(string(data), "\n---") {
			var o struct {
				metav1.TypeMeta
				Metadata metav1.ObjectMeta `json:"metadata"`
			}
			// Patches (lists) and comments decode to nothing.
			if yaml.Unmarshal([]byte(doc), &o) == nil && o.Kind != "" {
				out[objectKey(o.Kind, o.Metadata.Name)] = p
			}
		}
		return nil
	})
	return out, err
}
