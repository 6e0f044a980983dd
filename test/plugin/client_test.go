package plugin

import (
	"encoding/json"
	"os/exec"
	"strings"
	"testing"

	"github.com/localdisk-csi/localdisk/driver/admin"
	"github.com/localdisk-csi/localdisk/test/testutil"
)

// TestClient_StatusAndVolumes runs `localdisk status` and `localdisk
// volumes` against the running plugin, in both output formats.
func TestClient_StatusAndVolumes(t *testing.T) {
	e := newEnv(t)
	v := e.create("client-vol", 3*mib, map[string]string{"pool": "data"})
	id := v.GetVolumeId()
	staging, target := e.paths(id)
	e.must(e.stage(id, staging))
	e.must(e.publish(id, staging, target, false, rwo))
	bin := testutil.BuildPlugin(t)
	run := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(bin, append(args, "--endpoint", e.p.Address())...).CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		return string(out)
	}

	var st admin.Status
	if err := json.Unmarshal([]byte(run("status", "--output", "json")), &st); err != nil {
		t.Fatal(err)
	}
	if st.NodeID != "node-1" || len(st.Pools) != 3 {
		t.Fatalf("status = %+v", st)
	}
	data := st.Pools[1]
	if data.Name != "data" || data.Kind != "path" || data.Capacity != 40*mib || data.Allocated != 3*mib ||
		data.Free != 37*mib || !data.Healthy || data.Volumes != 1 {
		t.Errorf("data pool = %+v", data)
	}
	if disks := st.Pools[2]; len(disks.Disks) != 2 || disks.Free != disks.Capacity {
		t.Errorf("disks pool = %+v", disks)
	}
	table := run("status")
	for _, want := range []string{"POOL", "data", "path", "40Mi", "3Mi", "37Mi", "healthy"} {
		if !strings.Contains(table, want) {
			t.Errorf("status table lacks %q:\n%s", want, table)
		}
	}

	var vols []admin.VolumeInfo
	if err := json.Unmarshal([]byte(run("volumes", "--output", "json")), &vols); err != nil {
		t.Fatal(err)
	}
	if len(vols) != 1 || vols[0].ID != id || vols[0].Name != "client-vol" || vols[0].Phase != "ready" || len(vols[0].Mounts) != 2 {
		t.Errorf("volumes = %+v", vols)
	}
	if table := run("volumes"); !strings.Contains(table, id) || !strings.Contains(table, target) {
		t.Errorf("volumes table:\n%s", table)
	}
	if out, err := exec.Command(bin, "status", "--output", "yaml", "--endpoint", e.p.Address()).CombinedOutput(); err == nil {
		t.Errorf("bad --output accepted: %s", out)
	}
	e.must(e.unpublish(id, target))
	e.must(e.unstage(id, staging))
	e.must(e.delete(id))
}
