package plugin

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/localdisk-csi/localdisk/test/testutil"
)

// TestRestart_KeepsEverything creates and publishes a volume of every kind,
// stops the plugin (SIGTERM, then SIGKILL) and restarts it: the volumes,
// their capacities and contexts are unchanged, the data is readable, and
// replaying stage and publish (as a CO does after a restart) mounts nothing
// more.
func TestRestart_KeepsEverything(t *testing.T) {
	e := newEnv(t)
	type vol struct{ id, staging, target string }
	var vols []vol
	for _, params := range []map[string]string{{"pool": "root"}, {"pool": "data"}, {"kind": "mount"}} {
		v := e.create("restart-"+params["pool"]+params["kind"], 5*mib, params)
		staging, target := e.paths(v.GetVolumeId())
		e.must(e.stage(v.GetVolumeId(), staging))
		e.must(e.publish(v.GetVolumeId(), staging, target, false, rwo))
		e.must(os.WriteFile(filepath.Join(target, "data"), []byte(v.GetVolumeId()), 0o644))
		vols = append(vols, vol{v.GetVolumeId(), staging, target})
	}
	before := e.list()
	mounts := testutil.Mounts(t, e.dir)

	for _, stop := range []struct {
		name string
		fn   func()
	}{{"SIGTERM", e.p.Stop}, {"SIGKILL", e.p.Kill}} {
		stop.fn()
		e.p.Restart()
		after := e.list()
		if len(after) != len(before) {
			t.Fatalf("after %s: %d volumes, want %d", stop.name, len(after), len(before))
		}
		for i := range after {
			if !proto.Equal(after[i], before[i]) {
				t.Errorf("after %s: volume %d changed:\n%v\n%v", stop.name, i, before[i], after[i])
			}
		}
		for _, v := range vols {
			e.must(e.stage(v.id, v.staging))
			e.must(e.publish(v.id, v.staging, v.target, false, rwo))
			if data, err := os.ReadFile(filepath.Join(v.target, "data")); err != nil || string(data) != v.id {
				t.Errorf("after %s: data of %s: %q %v", stop.name, v.id, data, err)
			}
		}
		if got := testutil.Mounts(t, e.dir); !slices.Equal(got, mounts) {
			t.Errorf("after %s, replays changed the mounts:\n%v\n%v", stop.name, mounts, got)
		}
	}
	for _, v := range vols {
		e.must(e.unpublish(v.id, v.target))
		e.must(e.unstage(v.id, v.staging))
		e.must(e.delete(v.id))
	}
	if n := len(e.list()); n != 0 {
		t.Errorf("%d volumes left", n)
	}
}
