package plugin

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/localdisk-csi/localdisk/driver/admin"
	"github.com/localdisk-csi/localdisk/test/testutil"
)

// TestOptional_PathPoolArrives: an optional PATH pool whose path does not
// exist does not keep the plugin from serving; it is absent (status,
// metrics present 0, capacity 0) and logged once at info, with nothing
// alarming; when the path appears the health check takes it into service.
func TestOptional_PathPoolArrives(t *testing.T) {
	testutil.RequireRoot(t)
	dir := testutil.ShortTempDir(t)
	addr := freeAddr(t)
	maybe := filepath.Join(dir, "maybe")
	cfg := fmt.Sprintf("pools:\n- name: r\n  kind: root\n  path: %s/root\n  capacity: 64Mi\n  quota: \"off\"\n"+
		"- name: maybe\n  kind: path\n  path: %s\n  capacity: 32Mi\n  quota: \"off\"\n  optional: true\n", dir, maybe)
	p := testutil.StartPlugin(t, testutil.BuildPlugin(t), testutil.PluginOptions{
		Endpoint: filepath.Join(dir, "csi.sock"), NodeID: "n", StateDir: filepath.Join(dir, "state"),
		ConfigPath: testutil.WriteConfig(t, dir, cfg), Args: []string{"--metrics-address", addr, "--health-interval", "200ms"},
	})
	e := &env{t: t, dir: dir, p: p}
	capacity := func() int64 {
		t.Helper()
		r, err := p.Controller().GetCapacity(ctx(t), &csi.GetCapacityRequest{Parameters: map[string]string{"pool": "maybe"}})
		if err != nil {
			t.Fatal(err)
		}
		return r.GetAvailableCapacity()
	}
	status := func() admin.PoolStatus {
		t.Helper()
		out, err := exec.Command(testutil.BuildPlugin(t), "status", "--output", "json", "--endpoint", p.Address()).CombinedOutput()
		if err != nil {
			t.Fatalf("status: %v\n%s", err, out)
		}
		var st admin.Status
		if err := json.Unmarshal(out, &st); err != nil || len(st.Pools) != 2 {
			t.Fatalf("status: %v %s", err, out)
		}
		return st.Pools[1]
	}

	metrics := scrape(t, addr)
	for _, want := range []string{
		`localdisk_pool_present{kind="path",pool="maybe"} 0`,
		`localdisk_pool_healthy{kind="path",pool="maybe"} 0`,
		`localdisk_pool_present{kind="root",pool="r"} 1`,
		`localdisk_pool_healthy{kind="root",pool="r"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if c := capacity(); c != 0 {
		t.Errorf("GetCapacity of the absent pool = %d, want 0", c)
	}
	if s := status(); !s.Absent || s.Healthy {
		t.Errorf("status of the absent pool: %+v", s)
	}
	table, _ := exec.Command(testutil.BuildPlugin(t), "status", "--endpoint", p.Address()).CombinedOutput()
	if !strings.Contains(string(table), "absent") || strings.Contains(string(table), "UNHEALTHY") {
		t.Errorf("status table:\n%s", table)
	}
	log := p.Log()
	if got := testutil.GrepLog(log, "pool absent (optional)"); len(got) != 1 || !strings.Contains(got[0], "level=info") {
		t.Errorf("log of the absent pool: %q", got)
	}
	for _, line := range testutil.GrepLog(log, "level=warning", "level=error") {
		if strings.Contains(line, "maybe") {
			t.Errorf("alarming log line about the optional pool: %s", line)
		}
	}

	if err := os.Mkdir(maybe, 0o755); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for capacity() == 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if c := capacity(); c != 32*mib {
		t.Fatalf("GetCapacity once the path exists = %d, want %d", c, 32*mib)
	}
	v := e.create("late", 4*mib, map[string]string{"pool": "maybe"})
	if !strings.HasPrefix(v.GetVolumeId(), "maybe-") {
		t.Errorf("volume %s, want it in pool maybe", v.GetVolumeId())
	}
	metrics = scrape(t, addr)
	for _, want := range []string{`localdisk_pool_present{kind="path",pool="maybe"} 1`, `localdisk_pool_healthy{kind="path",pool="maybe"} 1`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if s := status(); s.Absent || !s.Healthy || s.Allocated != 4*mib {
		t.Errorf("status of the arrived pool: %+v", s)
	}
	if got := testutil.GrepLog(p.Log(), "pool healthy: serving"); len(got) != 1 || !strings.Contains(got[0], "pool=maybe") {
		t.Errorf("log once the path appeared: %q", got)
	}
	e.must(e.delete(v.GetVolumeId()))
}
