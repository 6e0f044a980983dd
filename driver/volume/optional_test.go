package volume

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"

	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/pool"
)

// startLogged starts a manager whose log is kept.
func startLogged(t *testing.T, stateDir string, cfg *pool.Config) (*Manager, *logtest.Hook) {
	t.Helper()
	log, hook := logtest.NewNullLogger()
	log.SetLevel(logrus.DebugLevel)
	m, err := New(stateDir, cfg, logrus.NewEntry(log))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m, hook
}

// poolLog is what the manager logged about a pool, as "level message".
func poolLog(hook *logtest.Hook, name string) []string {
	var out []string
	for _, e := range hook.AllEntries() {
		if e.Data["pool"] == name {
			out = append(out, e.Level.String()+" "+e.Message)
		}
	}
	return out
}

// An optional PATH pool whose path does not exist is absent: not healthy,
// not present, no capacity, logged once at info; when the path appears the
// health check takes it into service. A pool that is not optional is
// unhealthy, as it always was.
func TestOptional_PathAbsentThenServed(t *testing.T) {
	base := t.TempDir()
	q := pool.Bytes(8 * MiB)
	cfg := &pool.Config{Pools: []pool.Spec{
		{Name: "r", Kind: pool.Root, Path: filepath.Join(base, "root")},
		{Name: "maybe", Kind: pool.Path, Path: filepath.Join(base, "maybe"), Capacity: q, Optional: true},
		{Name: "must", Kind: pool.Path, Path: filepath.Join(base, "must"), Capacity: q},
	}}
	m, hook := startLogged(t, filepath.Join(base, "state"), cfg)
	maybe, must := m.pools["maybe"], m.pools["must"]
	sel, err := m.ParseSelector(map[string]string{layout.ParamPool: "maybe"})
	if err != nil {
		t.Fatal(err)
	}
	if avail, _ := m.Capacity(sel, false); maybe.Healthy() || maybe.Present() || avail != 0 {
		t.Errorf("absent optional pool: healthy %v, present %v, capacity %d; want false, false, 0", maybe.Healthy(), maybe.Present(), avail)
	}
	if must.Healthy() || !must.Present() {
		t.Errorf("missing pool that is not optional: healthy %v, present %v; want false, true", must.Healthy(), must.Present())
	}
	want := "info pool absent (optional): " + cfg.Pools[1].Path + " does not exist on this node; it is taken into service when it appears"
	if got := poolLog(hook, "maybe"); len(got) != 1 || got[0] != want {
		t.Errorf("log of the absent pool: %q, want [%q]", got, want)
	}
	if got := poolLog(hook, "must"); len(got) != 1 || !strings.HasPrefix(got[0], "warning pool unhealthy") {
		t.Errorf("log of the missing pool: %q, want one warning", got)
	}
	m.CheckHealth()
	if got := poolLog(hook, "maybe"); len(got) != 1 {
		t.Errorf("absent logged again: %q", got)
	}

	if err := os.Mkdir(cfg.Pools[1].Path, 0o755); err != nil {
		t.Fatal(err)
	}
	m.CheckHealth()
	if avail, _ := m.Capacity(sel, false); !maybe.Healthy() || !maybe.Present() || avail != 8*MiB {
		t.Errorf("arrived optional pool: healthy %v, present %v, capacity %d", maybe.Healthy(), maybe.Present(), avail)
	}
	got := poolLog(hook, "maybe")
	if len(got) < 2 || got[len(got)-1] != "info pool healthy: serving" {
		t.Errorf("log once the path appeared: %q", got)
	}
	for _, l := range got {
		if !strings.HasPrefix(l, "info ") && !strings.HasPrefix(l, "debug ") {
			t.Errorf("alarming log line about an optional pool: %q", l)
		}
	}
	if _, err := m.Create(t.Context(), CreateRequest{Name: "v", Required: MiB, Selector: sel}); err != nil {
		t.Errorf("CreateVolume in the arrived pool: %v", err)
	}
}

// An optional pool that holds volumes and loses its path is unhealthy, not
// absent: the alert must fire for it.
func TestOptional_WithVolumesIsUnhealthy(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "maybe")
	os.Mkdir(dir, 0o755)
	q := pool.Bytes(8 * MiB)
	cfg := &pool.Config{Pools: []pool.Spec{{Name: "maybe", Kind: pool.Path, Path: dir, Capacity: q, Optional: true}}}
	f := &fixture{t: t, stateDir: filepath.Join(base, "state"), cfg: cfg}
	f.restart()
	if _, err := f.create("v", MiB, 0, map[string]string{layout.ParamPool: "maybe"}); err != nil {
		t.Fatal(err)
	}
	f.m.Close()
	f.m = nil
	if err := os.Rename(dir, dir+".gone"); err != nil {
		t.Fatal(err)
	}
	m, hook := startLogged(t, f.stateDir, cfg)
	p := m.pools["maybe"]
	if p.Healthy() || !p.Present() {
		t.Errorf("optional pool with a volume, path gone: healthy %v, present %v; want false, true", p.Healthy(), p.Present())
	}
	if got := poolLog(hook, "maybe"); len(got) != 1 || !strings.HasPrefix(got[0], "warning pool unhealthy") {
		t.Errorf("log: %q, want one warning", got)
	}
}

// An optional MOUNT pool none of whose disks is mounted is absent; one
// that is not optional is unhealthy.
func TestOptional_MountAbsent(t *testing.T) {
	base := t.TempDir()
	for _, d := range []string{"d1", "d2"} {
		os.Mkdir(filepath.Join(base, d), 0o755) // mount points, nothing mounted
	}
	cfg := &pool.Config{Pools: []pool.Spec{
		{Name: "spare", Kind: pool.Mount, Optional: true, Disks: []pool.DiskSpec{{Path: filepath.Join(base, "d1")}, {Device: "/dev/disk/by-id/localdisk-test-none", FSType: pool.FSXFS}}},
		{Name: "disks", Kind: pool.Mount, Disks: []pool.DiskSpec{{Path: filepath.Join(base, "d2")}}},
	}}
	m, hook := startLogged(t, filepath.Join(base, "state"), cfg)
	if p := m.pools["spare"]; p.Healthy() || p.Present() {
		t.Errorf("optional MOUNT pool without disks: healthy %v, present %v", p.Healthy(), p.Present())
	}
	if got := poolLog(hook, "spare"); len(got) != 1 || got[0] != "info pool absent (optional): none of its 2 disks is on this node; it is taken into service when one appears" {
		t.Errorf("log: %q", got)
	}
	if p := m.pools["disks"]; p.Healthy() || !p.Present() {
		t.Errorf("MOUNT pool without disks: healthy %v, present %v", p.Healthy(), p.Present())
	}
}
