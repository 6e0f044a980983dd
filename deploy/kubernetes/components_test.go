package kubernetes

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/yaml"
)

func TestImageTag(t *testing.T) {
	tag, err := ImageTag()
	if err != nil {
		t.Fatal(err)
	}
	ds := one[*appsv1.DaemonSet](t, load(t))
	if got, want := container(t, ds, "localdisk").Image, Image+":"+tag; got != want {
		t.Errorf("localdisk image %q, want %q (kustomization.yaml's images:)", got, want)
	}
	data, err := Build("v9.8.7-rc.1")
	if err != nil {
		t.Fatal(err)
	}
	objs, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	ds = one[*appsv1.DaemonSet](t, wrap(objs))
	if got, want := container(t, ds, "localdisk").Image, Image+":v9.8.7-rc.1"; got != want {
		t.Errorf("Build with a tag: localdisk image %q, want %q", got, want)
	}
}

func TestDaemonSet_CSIEndpoint(t *testing.T) {
	c := container(t, one[*appsv1.DaemonSet](t, load(t)), "localdisk")
	var endpoint string
	for _, a := range c.Args {
		if v, ok := strings.CutPrefix(a, "--endpoint="); ok {
			endpoint = v
		}
	}
	for _, e := range c.Env {
		if e.Name == "CSI_ENDPOINT" {
			if e.Value != endpoint || endpoint == "" {
				t.Errorf("CSI_ENDPOINT=%q, but the plugin serves --endpoint=%q", e.Value, endpoint)
			}
			return
		}
	}
	t.Errorf("the localdisk container has no CSI_ENDPOINT, so `localdisk status` in it needs --endpoint")
}

// Every file of a component is used by its kustomization, and the
// embedded components are those on disk.
func TestComponents_Files(t *testing.T) {
	names, err := Components()
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{ComponentKubeletDir, ComponentMetrics, ComponentNoSnapshots}; !slices.Equal(names, want) {
		t.Errorf("components %v, want %v", names, want)
	}
	for _, c := range names {
		k, err := readKustomization("components/" + c + "/" + KustomizationFile)
		if err != nil {
			t.Fatal(err)
		}
		if k.Kind != "Component" {
			t.Errorf("component %s: kind %q, want Component", c, k.Kind)
		}
		used := slices.Clone(k.Resources)
		for _, p := range k.Patches {
			used = append(used, p.Path)
		}
		onDisk, err := filepath.Glob(filepath.Join("components", c, "*"))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range onDisk {
			if base := filepath.Base(f); base != KustomizationFile && !slices.Contains(used, base) {
				t.Errorf("component %s: %s is not used by its kustomization.yaml", c, base)
			}
		}
	}
	if _, err := Build("", "nosuch"); err == nil {
		t.Error("Build with an unknown component: no error")
	}
}

func TestComponents_Metrics(t *testing.T) {
	objs, err := LoadWith(ComponentMetrics)
	if err != nil {
		t.Fatal(err)
	}
	base := load(t)
	if len(objs) != len(base)+2 {
		t.Errorf("with metrics: %d objects, want the base's %d and 2", len(objs), len(base))
	}
	ds := one[*appsv1.DaemonSet](t, objs)
	var pm, rule *unstructured.Unstructured
	for _, u := range All[*unstructured.Unstructured](objs) {
		if u.GroupVersionKind().Group != "monitoring.coreos.com" {
			continue
		}
		if u.GetNamespace() != Namespace {
			t.Errorf("%s %s: namespace %q, want %q", u.GetKind(), u.GetName(), u.GetNamespace(), Namespace)
		}
		switch u.GetKind() {
		case "PodMonitor":
			pm = u
		case "PrometheusRule":
			rule = u
		}
	}
	if pm == nil || rule == nil {
		t.Fatalf("with metrics: PodMonitor %v, PrometheusRule %v", pm != nil, rule != nil)
	}
	match, _, _ := unstructured.NestedStringMap(pm.Object, "spec", "selector", "matchLabels")
	if len(match) == 0 || !labels.SelectorFromSet(match).Matches(labels.Set(ds.Spec.Template.Labels)) {
		t.Errorf("PodMonitor selects %v, not the DaemonSet's pods %v", match, ds.Spec.Template.Labels)
	}
	endpoints, _, _ := unstructured.NestedSlice(pm.Object, "spec", "podMetricsEndpoints")
	c := container(t, ds, "localdisk")
	for _, e := range endpoints {
		port, _ := e.(map[string]any)["port"].(string)
		if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == port }) {
			t.Errorf("PodMonitor scrapes port %q, which the localdisk container lacks", port)
		}
	}
	if len(endpoints) == 0 {
		t.Error("PodMonitor has no podMetricsEndpoints")
	}
	groups, _, _ := unstructured.NestedSlice(rule.Object, "spec", "groups")
	if want := DocAlertRules(t); !reflect.DeepEqual(groups, want) {
		got, _ := json.MarshalIndent(groups, "", "  ")
		w, _ := json.MarshalIndent(want, "", "  ")
		t.Errorf("the PrometheusRule's groups differ from docs/operations.md's alert rules:\n%s\nwant\n%s", got, w)
	}
}

// DocAlertRules returns the groups of the alert rules in docs/operations.md
// ("Monitoring", the yaml block that starts with groups:).
func DocAlertRules(t *testing.T) []any {
	t.Helper()
	doc, err := os.ReadFile("../../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	_, mon, _ := strings.Cut(string(doc), "\n## Monitoring\n")
	mon, _, _ = strings.Cut(mon, "\n## ")
	for _, m := range regexp.MustCompile("(?s)```yaml\n(groups:.*?)```").FindAllStringSubmatch(mon, -1) {
		var rules struct {
			Groups []any `json:"groups"`
		}
		if err := yaml.UnmarshalStrict([]byte(m[1]), &rules); err != nil {
			t.Fatalf("docs/operations.md's alert rules: %v", err)
		}
		return rules.Groups
	}
	t.Fatal("docs/operations.md: no alert rules (a yaml block starting with groups: under ## Monitoring)")
	return nil
}

// The kubelet-dir component moves every path under /var/lib/kubelet, and
// changes nothing else.
func TestComponents_KubeletDir(t *testing.T) {
	objs, err := LoadWith(ComponentKubeletDir)
	if err != nil {
		t.Fatal(err)
	}
	base := load(t)
	if len(objs) != len(base) {
		t.Fatalf("with kubelet-dir: %d objects, want the base's %d", len(objs), len(base))
	}
	const from, to = "/var/lib/kubelet", "/var/lib/k0s/kubelet"
	for i, o := range objs {
		got, err := json.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(base[i].Object)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(got), `"`+from) || strings.Contains(string(got), "="+from) {
			t.Errorf("%s: still names %s: %s", o.Name(), from, got)
		}
		moved := strings.NewReplacer(`"`+from, `"`+to, "="+from, "="+to).Replace(string(want))
		if string(got) != moved {
			t.Errorf("%s with kubelet-dir:\n%s\nwant the base's with %s moved to %s:\n%s", o.Name(), got, from, to, moved)
		}
	}
	ds := one[*appsv1.DaemonSet](t, objs)
	c := container(t, ds, "localdisk")
	if vm, vol := mount(t, ds, c, to); vol.HostPath == nil || vol.HostPath.Path != to || vm.MountPropagation == nil {
		t.Errorf("with kubelet-dir, %s is not the host's %s with propagation", to, to)
	}
}

func wrap(objs []runtime.Object) []Object {
	out := make([]Object, len(objs))
	for i, o := range objs {
		out[i] = Object{Object: o}
	}
	return out
}
