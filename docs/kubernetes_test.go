package docs

import (
	"fmt"
	"maps"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"google.golang.org/grpc"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	deploy "github.com/localdisk-csi/localdisk/deploy/kubernetes"
	"github.com/localdisk-csi/localdisk/driver/admin"
)

const (
	kubernetesDoc = "kubernetes.md"
	chartValues   = "../deploy/helm/localdisk/values.yaml"
)

func daemonSet(t *testing.T) *appsv1.DaemonSet {
	t.Helper()
	objs, err := deploy.Load()
	if err != nil {
		t.Fatal(err)
	}
	ds, err := deploy.One[*appsv1.DaemonSet](objs)
	if err != nil {
		t.Fatal(err)
	}
	return ds
}

var (
	codeSpanRE = regexp.MustCompile("`([^`]+)`")
	flagRE     = regexp.MustCompile(`^--[a-z0-9-]+`)
)

// TestKubernetesContainersDocumented holds the container table of
// kubernetes.md to the DaemonSet: a row per container, the plugin's command
// line exactly, and every flag a row names among the container's args.
func TestKubernetesContainersDocumented(t *testing.T) {
	text := section(t, readDoc(t, kubernetesDoc), kubernetesDoc, "Install")
	ds := daemonSet(t)
	for _, c := range ds.Spec.Template.Spec.Containers {
		rs := rows(text, c.Name)
		if len(rs) != 1 {
			t.Errorf("%s: %d rows for the container `%s`, want 1", kubernetesDoc, len(rs), c.Name)
			continue
		}
		row := strings.SplitN(rs[0], "|", 4)[2]
		for _, m := range codeSpanRE.FindAllStringSubmatch(row, -1) {
			span := m[1]
			if cmd, ok := strings.CutPrefix(span, c.Name+" "); ok && c.Name == "localdisk" {
				if want := strings.Join(c.Args, " "); cmd != want {
					t.Errorf("%s: the plugin runs `localdisk %s`; the DaemonSet's args are %q", kubernetesDoc, cmd, want)
				}
				continue
			}
			flag := flagRE.FindString(span)
			if flag == "" {
				continue
			}
			if !slices.ContainsFunc(c.Args, func(a string) bool {
				return a == span || (flag == span && strings.HasPrefix(a, flag+"="))
			}) {
				t.Errorf("%s: the row of `%s` says `%s`; its args are %q", kubernetesDoc, c.Name, span, c.Args)
			}
		}
	}
	if !strings.Contains(text, "localdisk status\n") {
		t.Errorf("%s: Install does not show `localdisk status` without flags (CSI_ENDPOINT)", kubernetesDoc)
	}
}

var portRE = regexp.MustCompile("\\bports? (\\d{2,5})\\b|(?:^|[\\s=`]):(\\d{2,5})\\b")

// TestKubernetesPortsDocumented checks that kubernetes.md gives every port
// of the DaemonSet with its name, and names no other.
func TestKubernetesPortsDocumented(t *testing.T) {
	doc := readDoc(t, kubernetesDoc)
	ports := map[string]corev1.ContainerPort{}
	for _, c := range daemonSet(t).Spec.Template.Spec.Containers {
		for _, p := range c.Ports {
			ports[fmt.Sprint(p.ContainerPort)] = p
			if want := fmt.Sprintf("port %d (`%s`", p.ContainerPort, p.Name); !strings.Contains(doc, want) {
				t.Errorf("%s does not give the port of %s: %q", kubernetesDoc, c.Name, want)
			}
		}
	}
	if len(ports) < 3 {
		t.Fatalf("the DaemonSet has only the ports %v", slices.Sorted(maps.Keys(ports)))
	}
	for _, m := range portRE.FindAllStringSubmatch(doc, -1) {
		n := m[1] + m[2]
		if _, ok := ports[n]; !ok {
			t.Errorf("%s names the port %s (%q), which the DaemonSet does not have (it has %v)",
				kubernetesDoc, n, m[0], slices.Sorted(maps.Keys(ports)))
		}
	}
}

// TestKubernetesInstallDocumented checks the sections on kustomize
// components, Helm values, upgrades and uninstalling.
func TestKubernetesInstallDocumented(t *testing.T) {
	doc := readDoc(t, kubernetesDoc)
	components, err := deploy.Components()
	if err != nil {
		t.Fatal(err)
	}
	text := section(t, doc, kubernetesDoc, "Kustomize components")
	for _, c := range components {
		if !strings.Contains(text, "| ["+c+"](../deploy/kubernetes/components/"+c+"/kustomization.yaml) |") {
			t.Errorf("%s: the component %s has no row", kubernetesDoc, c)
		}
	}
	data, err := os.ReadFile(chartValues)
	if err != nil {
		t.Fatal(err)
	}
	var values map[string]any
	if err := yaml.Unmarshal(data, &values); err != nil {
		t.Fatal(err)
	}
	install := section(t, doc, kubernetesDoc, "Install")
	for k := range values {
		if !strings.Contains(install, "`"+k+"`") && !strings.Contains(install, "`"+k+".") && k != "image" && k != "sidecars" {
			t.Errorf("%s: Install does not name the chart's value `%s`", kubernetesDoc, k)
		}
	}
	section(t, doc, kubernetesDoc, "Upgrade")
	uninstall := section(t, doc, kubernetesDoc, "Uninstall")
	last := -1
	for _, step := range []string{"1. **Delete the PVCs**", "2. **Delete the DaemonSet**", "3. **Delete the rest**, the CSIDriver only once its PVs are gone"} {
		i := strings.Index(uninstall, step)
		if i <= last {
			t.Errorf("%s: Uninstall lacks, or misplaces, the step %q", kubernetesDoc, step)
		}
		last = i
	}
}

// TestAdminMetricLabel checks the labels that operations.md gives the
// operator API's calls: its gRPC service name and its methods' names, as
// the standard grpc_server_* metrics label them.
func TestAdminMetricLabel(t *testing.T) {
	s := grpc.NewServer()
	admin.Register(s, &admin.Server{})
	info, ok := s.GetServiceInfo()[admin.ServiceName]
	if !ok || len(info.Methods) == 0 {
		t.Fatalf("no methods registered for %s", admin.ServiceName)
	}
	text := section(t, readDoc(t, operationsDoc), operationsDoc, "Monitoring")
	row := rows(text, "grpc_server_started_total")
	if len(row) != 1 {
		t.Fatalf("%s: %d rows for grpc_server_started_total", operationsDoc, len(row))
	}
	if !strings.Contains(row[0], "`"+admin.ServiceName+"`") {
		t.Errorf("%s: the row of grpc_server_started_total does not give the operator API's service `%s`", operationsDoc, admin.ServiceName)
	}
	for _, m := range info.Methods {
		if !strings.Contains(row[0], "`"+m.Name+"`") {
			t.Errorf("%s: the row of grpc_server_started_total does not give the operator API's method `%s`", operationsDoc, m.Name)
		}
	}
}

// TestNoStaleClaims keeps out claims that were once true and no longer are.
func TestNoStaleClaims(t *testing.T) {
	for file, stale := range map[string][]string{
		operationsDoc:  {"always `off` for now", "always 0 for now", "not yet fed", "count as `localdisk.v1.Admin`"},
		kubernetesDoc:  {"does not enable metrics", "--endpoint unix:///csi/csi.sock"},
		"../README.md": {"judged from `/proc/self/mountinfo`."},
	} {
		doc := readDoc(t, file)
		for _, s := range stale {
			if strings.Contains(doc, s) {
				t.Errorf("%s says %q, which is no longer true", file, s)
			}
		}
	}
}
