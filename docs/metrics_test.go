package docs

import (
	"context"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"
	"sigs.k8s.io/yaml"

	"github.com/localdisk-csi/localdisk/driver/metrics"
	"github.com/localdisk-csi/localdisk/driver/pool"
	"github.com/localdisk-csi/localdisk/driver/volume"
)

var metricRE = regexp.MustCompile(`\b(?:localdisk|grpc_server)_[a-z0-9_]+`)

// retired metrics may be named (to say what replaced them), never used.
var retired = map[string]bool{"localdisk_rpc_requests_total": true, "localdisk_rpc_duration_seconds": true}

// metricNames scrapes a metrics registry over a real volume manager, after
// one RPC went through its interceptor, and adds the names written in the
// package's source (a vector with no sample yet is not scraped).
func metricNames(t *testing.T) []string {
	t.Helper()
	dir := t.TempDir()
	log := logrus.New()
	log.SetOutput(io.Discard)
	vols, err := volume.New(filepath.Join(dir, "state"), pool.Default(filepath.Join(dir, "state")), logrus.NewEntry(log))
	if err != nil {
		t.Fatal(err)
	}
	defer vols.Close()
	m := metrics.New(vols)
	_, err = m.Interceptor()(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: "/csi.v1.Identity/Probe"},
		func(context.Context, any) (any, error) { return nil, nil })
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go m.Serve(ctx, l)
	resp, err := http.Get("http://" + l.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, line := range strings.Split(string(body), "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[0] == "#" && f[1] == "HELP" && metricRE.MatchString(f[2]) {
			names[f[2]] = true
		}
	}
	srcs, err := filepath.Glob("../driver/metrics/*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range srcs {
		if strings.HasSuffix(src, "_test.go") {
			continue
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range regexp.MustCompile(`"(localdisk_[a-z0-9_]+)"`).FindAllStringSubmatch(string(b), -1) {
			names[q[1]] = true
		}
	}
	var out []string
	for n := range names {
		out = append(out, n)
	}
	sort.Strings(out)
	if len(out) < 10 {
		t.Fatalf("only %d localdisk and grpc_server metrics found: %v", len(out), out)
	}
	return out
}

// TestMetricsDocumented checks that operations.md has a row for every
// metric localdisk registers, and that every localdisk_ name it uses (in
// the table and the alert rules) exists; the alert rules must be valid
// YAML with an expression per rule.
func TestMetricsDocumented(t *testing.T) {
	text := section(t, readDoc(t, operationsDoc), operationsDoc, "Monitoring")
	names := metricNames(t)
	for _, n := range names {
		if len(rows(text, n)) == 0 {
			t.Errorf("%s: the metric %s has no row in the Monitoring table", operationsDoc, n)
		}
	}
	known := map[string]bool{}
	for _, n := range names {
		for _, s := range []string{"", "_bucket", "_sum", "_count"} {
			known[n+s] = true
		}
	}
	for _, want := range []string{"grpc_server_handled_total", "grpc_server_handling_seconds"} {
		if !known[want] {
			t.Errorf("the plugin does not export %s", want)
		}
	}
	for _, n := range metricRE.FindAllString(readDoc(t, operationsDoc), -1) {
		if retired[n] && !known[n] {
			continue
		}
		if !known[n] {
			t.Errorf("%s names %s, which localdisk does not export", operationsDoc, n)
		}
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `json:"alert"`
				Expr  string `json:"expr"`
			} `json:"rules"`
		} `json:"groups"`
	}
	block := ""
	for _, b := range codeBlocks(text) {
		if strings.HasPrefix(b, "groups:") {
			block = b
		}
	}
	if block == "" {
		t.Fatalf("%s: no alert rules (a code block starting with groups:)", operationsDoc)
	}
	if err := yaml.Unmarshal([]byte(block), &rules); err != nil {
		t.Fatalf("%s: alert rules: %v", operationsDoc, err)
	}
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			n++
			if r.Alert == "" || !metricRE.MatchString(r.Expr) {
				t.Errorf("%s: alert rule %q has no name or no localdisk metric in %q", operationsDoc, r.Alert, r.Expr)
			}
			// An optional pool absent from a node is not healthy either,
			// but nothing is wrong: no alert on localdisk_pool_healthy
			// may fire for it.
			if strings.Contains(r.Expr, "localdisk_pool_healthy") && !strings.Contains(r.Expr, "unless localdisk_pool_present == 0") {
				t.Errorf("%s: alert rule %q fires for absent optional pools: add `unless localdisk_pool_present == 0` to %q", operationsDoc, r.Alert, r.Expr)
			}
			for _, n := range metricRE.FindAllString(r.Expr, -1) {
				if retired[n] {
					t.Errorf("%s: alert rule %q uses the retired metric %s", operationsDoc, r.Alert, n)
				}
			}
		}
	}
	if n == 0 {
		t.Errorf("%s: the alert rules are empty", operationsDoc)
	}
}
