package plugin

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/localdisk-csi/localdisk/test/testutil"
)

// TestMetrics_Scrape scrapes a running plugin's /metrics.
func TestMetrics_Scrape(t *testing.T) {
	testutil.RequireRoot(t)
	dir := testutil.ShortTempDir(t)
	addr := freeAddr(t)
	cfg := fmt.Sprintf("pools:\n- name: r\n  kind: root\n  path: %s/root\n  capacity: 64Mi\n", dir)
	p := testutil.StartPlugin(t, testutil.BuildPlugin(t), testutil.PluginOptions{
		Endpoint: filepath.Join(dir, "csi.sock"), NodeID: "n", StateDir: filepath.Join(dir, "state"),
		ConfigPath: testutil.WriteConfig(t, dir, cfg), Args: []string{"--metrics-address", addr},
	})
	e := &env{t: t, dir: dir, p: p}
	e.create("m", 4*mib, nil)
	body := scrape(t, addr)
	text := string(body)
	for _, want := range []string{
		`grpc_server_handled_total{grpc_code="OK",grpc_method="CreateVolume",grpc_service="csi.v1.Controller",grpc_type="unary"} 1`,
		`grpc_server_handling_seconds_count{grpc_method="CreateVolume",grpc_service="csi.v1.Controller",grpc_type="unary"} 1`,
		`localdisk_pool_capacity_bytes{kind="root",pool="r"} 6.7108864e+07`,
		`localdisk_pool_allocated_bytes{kind="root",pool="r"} 4.194304e+06`,
		`localdisk_pool_free_bytes{kind="root",pool="r"} 6.291456e+07`,
		`localdisk_pool_volumes{kind="root",pool="r"} 1`,
		`localdisk_pool_healthy{kind="root",pool="r"} 1`,
		`localdisk_pool_quota_enforced{kind="root",pool="r"} 0`,
		`localdisk_erase_backlog 0`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
