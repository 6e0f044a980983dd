// The Helm chart (deploy/helm/localdisk) is linted and rendered with the helm
// that hack/build-helm.sh builds from its pinned Go module (cached after the
// first build; -short skips these tests), and its render is held to the
// kustomize build of deploy/kubernetes so that the two cannot drift.
package helm

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	deploy "github.com/localdisk-csi/localdisk/deploy/kubernetes"
	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/pool"
)

const chartDir = "localdisk"

// helmLabels are the labels the chart adds to every object's metadata, and
// the only difference the comparison with kustomize ignores.
var helmLabels = []string{
	"helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/instance", "app.kubernetes.io/version",
}

// helm returns the path of the pinned helm, building it on the first run.
func helm(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: builds helm on its first run")
	}
	cmd := exec.Command("../../hack/build-helm.sh")
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("hack/build-helm.sh: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// run runs helm with args, with its caches and config in a temporary
// directory, and returns its standard output.
func run(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home+"/cache", "HELM_CONFIG_HOME="+home+"/config",
		"HELM_DATA_HOME="+home+"/data")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm %s: %v\n%s%s", strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return out
}

// template renders the chart as `helm install localdisk` into the
// namespace localdisk would, with --set args.
func template(t *testing.T, bin string, set ...string) []byte {
	t.Helper()
	args := []string{"template", "localdisk", chartDir, "--namespace", deploy.Namespace}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	return run(t, bin, args...)
}

func TestChart_Lint(t *testing.T) {
	bin := helm(t)
	out := run(t, bin, "lint", "--strict", chartDir)
	t.Logf("helm lint --strict %s:\n%s", chartDir, out)
	out = run(t, bin, "lint", "--strict", chartDir, "--set", "metrics.podMonitor.enabled=true",
		"--set", "metrics.prometheusRule.enabled=true", "--set", "namespace.create=false")
	t.Logf("helm lint --strict with every option:\n%s", out)
	out = run(t, bin, "lint", "--strict", chartDir, "--set", "snapshots.enabled=false")
	t.Logf("helm lint --strict without snapshots:\n%s", out)
}

// TestChart_MatchesKustomize compares the chart's render with the kustomize
// build (krusty) of the base, and with its components: the same objects by
// kind and name, equal in every field (containers, images, args, env,
// mounts, volumes, ...) but Helm's labels.
func TestChart_MatchesKustomize(t *testing.T) {
	bin := helm(t)
	for _, c := range []struct {
		name       string
		set        []string
		tag        string
		components []string
	}{
		{name: "defaults"},
		{name: "metrics", set: []string{"metrics.podMonitor.enabled=true", "metrics.prometheusRule.enabled=true"},
			components: []string{deploy.ComponentMetrics}},
		{name: "kubelet-dir", set: []string{"kubeletDir=/var/lib/k0s/kubelet"},
			components: []string{deploy.ComponentKubeletDir}},
		{name: "image tag", set: []string{"image.tag=v9.8.7"}, tag: "v9.8.7"},
		{name: "no snapshots", set: []string{"snapshots.enabled=false"},
			components: []string{deploy.ComponentNoSnapshots}},
	} {
		t.Run(c.name, func(t *testing.T) {
			rendered := template(t, bin, c.set...)
			if _, err := deploy.Decode(rendered); err != nil {
				t.Fatalf("the chart's render does not decode strictly: %v", err)
			}
			built, err := deploy.Build(c.tag, c.components...)
			if err != nil {
				t.Fatal(err)
			}
			got, want := objects(t, rendered), objects(t, built)
			for _, o := range got {
				labels, _ := o["metadata"].(map[string]any)["labels"].(map[string]any)
				for _, l := range helmLabels {
					if _, ok := labels[l]; !ok {
						t.Errorf("%s: no Helm label %s", key(o), l)
					}
					delete(labels, l)
				}
			}
			if g, w := keys(got), keys(want); !slices.Equal(g, w) {
				t.Errorf("the chart renders %v\nkustomize builds %v", g, w)
			}
			for k, w := range want {
				g, ok := got[k]
				if !ok {
					continue
				}
				for _, d := range diff(k, g, w) {
					t.Error(d)
				}
			}
			t.Logf("%d objects, equal but Helm's labels %v: %v", len(want), helmLabels, keys(want))
		})
	}
}

// objects decodes a multi-document YAML stream into generic objects by
// kind/namespace/name.
func objects(t *testing.T, data []byte) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		var o map[string]any
		if err := yaml.Unmarshal(doc, &o); err != nil {
			t.Fatal(err)
		}
		if o == nil {
			continue
		}
		if _, dup := out[key(o)]; dup {
			t.Errorf("%s twice", key(o))
		}
		out[key(o)] = o
	}
}

func key(o map[string]any) string {
	md, _ := o["metadata"].(map[string]any)
	if ns, ok := md["namespace"]; ok {
		return fmt.Sprintf("%v %v/%v", o["kind"], ns, md["name"])
	}
	return fmt.Sprintf("%v %v", o["kind"], md["name"])
}

func keys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}

// diff lists where got and want differ, by path.
func diff(path string, got, want any) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			break
		}
		var out []string
		all := map[string]bool{}
		for k := range g {
			all[k] = true
		}
		for k := range w {
			all[k] = true
		}
		names := slices.Collect(maps.Keys(all))
		sort.Strings(names)
		for _, k := range names {
			out = append(out, diff(path+"."+k, g[k], w[k])...)
		}
		return out
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			break
		}
		var out []string
		for i := range w {
			out = append(out, diff(fmt.Sprintf("%s[%d]", path, i), g[i], w[i])...)
		}
		return out
	}
	if !reflect.DeepEqual(got, want) {
		return []string{fmt.Sprintf("%s: the chart renders %s, kustomize builds %s", path, show(got), show(want))}
	}
	return nil
}

func show(v any) string {
	if v == nil {
		return "nothing"
	}
	b, _ := yaml.Marshal(v)
	return strings.TrimSpace(string(b))
}

// The pools file is one value, copied from deploy/kubernetes/configmap.yaml,
// and the chart's release is the manifests'.
func TestChart_ValuesMatchManifests(t *testing.T) {
	var values struct {
		Pools string `json:"pools"`
	}
	readYAML(t, chartDir+"/values.yaml", &values)
	objs, err := deploy.Load()
	if err != nil {
		t.Fatal(err)
	}
	cm, err := deploy.One[*corev1.ConfigMap](objs)
	if err != nil {
		t.Fatal(err)
	}
	c, err := pool.Parse([]byte(values.Pools), "")
	if err != nil {
		t.Fatalf("values.yaml's pools: %v", err)
	}
	deploy.CheckRootReserve(t, "the chart's values.yaml pools", c)
	if values.Pools != cm.Data["pools.yaml"] {
		t.Errorf("values.yaml's pools:\n%s\ndeploy/kubernetes/configmap.yaml's pools.yaml:\n%s", values.Pools, cm.Data["pools.yaml"])
	}
	var chart struct {
		Version    string `json:"version"`
		AppVersion string `json:"appVersion"`
	}
	readYAML(t, chartDir+"/Chart.yaml", &chart)
	tag, err := deploy.ImageTag()
	if err != nil {
		t.Fatal(err)
	}
	if chart.AppVersion != tag || "v"+chart.Version != tag {
		t.Errorf("Chart.yaml: version %s, appVersion %s; deploy/kubernetes's image tag is %s: want %s and %s",
			chart.Version, chart.AppVersion, tag, strings.TrimPrefix(tag, "v"), tag)
	}
	rules, err := os.ReadFile(chartDir + "/files/alert-rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(rules, []byte("{{ .")) {
		t.Error("files/alert-rules.yaml holds a Helm template, but it is inserted as it is")
	}
}

func readYAML(t *testing.T, name string, v any) {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// The values that have no kustomize counterpart land where they should.
func TestChart_Values(t *testing.T) {
	bin := helm(t)
	data := template(t, bin, "nodeSelector.disktype=ssd", "tolerations=null", "priorityClassName=high",
		"resources.limits.memory=1Gi", "metrics.enabled=false", "namespace.create=false", "namespace.name=",
		"storageClasses[0].name=fast", "storageClasses[0].parameters.pool=nvme",
		"storageClasses[0].reclaimPolicy=Retain", "storageClasses[0].allowVolumeExpansion=true",
		"image.repository=example.com/localdisk", "image.pullPolicy=Always",
		"snapshots.volumeSnapshotClass.name=keep", "snapshots.volumeSnapshotClass.deletionPolicy=Retain",
		`snapshots.volumeSnapshotClass.annotations.snapshot\.storage\.kubernetes\.io/is-default-class=true`)
	docs, err := deploy.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	var objs []deploy.Object
	for _, d := range docs {
		objs = append(objs, deploy.Object{Object: d})
	}
	if ns := deploy.All[*corev1.Namespace](objs); len(ns) != 0 {
		t.Errorf("namespace.create=false renders a Namespace")
	}
	ds, err := deploy.One[*appsv1.DaemonSet](objs)
	if err != nil {
		t.Fatal(err)
	}
	spec := ds.Spec.Template.Spec
	if ds.Namespace != deploy.Namespace { // namespace.name "": the release's, --namespace localdisk
		t.Errorf("DaemonSet in %q, want the release's namespace %q", ds.Namespace, deploy.Namespace)
	}
	if spec.NodeSelector["disktype"] != "ssd" || len(spec.Tolerations) != 0 || spec.PriorityClassName != "high" {
		t.Errorf("nodeSelector %v, tolerations %v, priorityClassName %q", spec.NodeSelector, spec.Tolerations, spec.PriorityClassName)
	}
	c := spec.Containers[0]
	if c.Name != "localdisk" || c.Image != "example.com/localdisk:v0.1.0" || c.ImagePullPolicy != corev1.PullAlways {
		t.Errorf("container %s: image %s, pull policy %s", c.Name, c.Image, c.ImagePullPolicy)
	}
	if c.Resources.Limits.Memory().String() != "1Gi" {
		t.Errorf("localdisk resources %v, want a 1Gi memory limit", c.Resources)
	}
	for _, a := range c.Args {
		if strings.HasPrefix(a, "--metrics-address") {
			t.Errorf("metrics.enabled=false, but the plugin has %s", a)
		}
	}
	if len(c.Ports) != 1 {
		t.Errorf("metrics.enabled=false: ports %v, want healthz only", c.Ports)
	}
	sc := deploy.All[*storagev1.StorageClass](objs)[0]
	if sc.Name != "fast" || sc.Parameters[layout.ParamPool] != "nvme" || *sc.ReclaimPolicy != corev1.PersistentVolumeReclaimRetain ||
		sc.AllowVolumeExpansion == nil || !*sc.AllowVolumeExpansion ||
		*sc.VolumeBindingMode != storagev1.VolumeBindingWaitForFirstConsumer {
		t.Errorf("StorageClass %s: %+v", sc.Name, sc)
	}
	var vsc []*unstructured.Unstructured
	for _, u := range deploy.All[*unstructured.Unstructured](objs) {
		if u.GetKind() == "VolumeSnapshotClass" {
			vsc = append(vsc, u)
		}
	}
	if len(vsc) != 1 {
		t.Fatalf("%d VolumeSnapshotClasses, want 1", len(vsc))
	}
	policy, _, _ := unstructured.NestedString(vsc[0].Object, "deletionPolicy")
	driver, _, _ := unstructured.NestedString(vsc[0].Object, "driver")
	if vsc[0].GetName() != "keep" || policy != "Retain" || driver != deploy.DriverName ||
		vsc[0].GetAnnotations()["snapshot.storage.kubernetes.io/is-default-class"] != "true" {
		t.Errorf("VolumeSnapshotClass %s: driver %s, deletionPolicy %s, annotations %v; want keep, %s, Retain and is-default-class",
			vsc[0].GetName(), driver, policy, vsc[0].GetAnnotations(), deploy.DriverName)
	}
}
