package volume

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/sirupsen/logrus"

	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/pool"
	"github.com/localdisk-csi/localdisk/driver/state"
)

const MiB = pool.MiB

type fixture struct {
	t        *testing.T
	stateDir string
	cfg      *pool.Config
	m        *Manager
}

// newFixture makes ROOT pool "r" (10 MiB) and PATH pool "p" (20 MiB) in
// temporary directories.
func newFixture(t *testing.T) *fixture {
	base := t.TempDir()
	q := pool.Bytes
	os.Mkdir(filepath.Join(base, "data"), 0o755)
	f := &fixture{t: t, stateDir: filepath.Join(base, "state"), cfg: &pool.Config{Pools: []pool.Spec{
		{Name: "r", Kind: pool.Root, Path: filepath.Join(base, "root"), Capacity: q(10 * MiB)},
		{Name: "p", Kind: pool.Path, Path: filepath.Join(base, "data"), Capacity: q(20 * MiB)},
	}}}
	f.restart()
	return f
}

func (f *fixture) restart() {
	f.t.Helper()
	if f.m != nil {
		f.m.Close()
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	m, err := New(f.stateDir, f.cfg, logrus.NewEntry(log))
	if err != nil {
		f.t.Fatal(err)
	}
	f.m = m
	f.t.Cleanup(func() { m.Close() })
}

func (f *fixture) create(name string, req, lim int64, params map[string]string) (*Volume, error) {
	sel, err := f.m.ParseSelector(params)
	if err != nil {
		return nil, err
	}
	return f.m.Create(context.Background(), CreateRequest{Name: name, Required: req, Limit: lim, Selector: sel})
}

func (f *fixture) free(params map[string]string) int64 {
	sel, err := f.m.ParseSelector(params)
	if err != nil {
		f.t.Fatal(err)
	}
	avail, _ := f.m.Capacity(sel, false)
	return avail
}

func TestCreate_RootFirstExactSizeAndIdempotent(t *testing.T) {
	f := newFixture(t)
	v, err := f.create("vol-1", 3*MiB+1, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	if v.Pool.Name != "r" || v.Capacity != 4*MiB {
		t.Errorf("got pool %s capacity %d, want root pool, 4 MiB", v.Pool.Name, v.Capacity)
	}
	if v.Context["pool"] != "r" || v.Context["kind"] != "root" {
		t.Errorf("context = %v", v.Context)
	}
	fi, err := os.Stat(filepath.Join(f.cfg.Pools[0].Path, dataDir, volumesDir, v.ID))
	if err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("volume dir: %v %v", fi, err)
	}
	again, err := f.create("vol-1", 3*MiB+1, 0, nil)
	if err != nil || again.ID != v.ID {
		t.Errorf("retry: %v %v", again, err)
	}
	if _, err := f.create("vol-1", 5*MiB, 0, nil); !errors.Is(err, ErrAlreadyExists) {
		t.Errorf("same name, larger: %v", err)
	}
	if _, err := f.create("vol-1", 0, 0, map[string]string{"pool": "p"}); !errors.Is(err, ErrAlreadyExists) {
		t.Errorf("same name, other pool: %v", err)
	}
	if _, err := f.create("VOL-1", 3*MiB, 0, nil); err != nil {
		t.Errorf("names are case-sensitive and opaque: %v", err)
	}
	if got := f.free(nil); got != 30*MiB-7*MiB {
		t.Errorf("free = %d", got)
	}
}

func TestCreate_CapacityErrors(t *testing.T) {
	f := newFixture(t)
	if _, err := f.create("big", 21*MiB, 0, nil); !errors.Is(err, pool.ErrOutOfRange) {
		t.Errorf("larger than every pool: %v", err)
	}
	if _, err := f.create("a", 8*MiB, 0, map[string]string{"kind": "root"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.create("b", 8*MiB, 0, map[string]string{"pool": "r"}); !errors.Is(err, pool.ErrInsufficientCapacity) {
		t.Errorf("full pool: %v", err)
	}
	v, err := f.create("c", 8*MiB, 0, nil) // falls through to the PATH pool
	if err != nil || v.Pool.Name != "p" {
		t.Errorf("fallback: %v %v", v, err)
	}
	if _, err := f.create("d", 0, 0, map[string]string{"kind": "mount"}); !errors.Is(err, pool.ErrInsufficientCapacity) {
		t.Errorf("no pool of the kind: %v", err)
	}
	for _, params := range []map[string]string{{"pool": "nope"}, {"kind": "lvm"}, {"size": "1"}, {"pool": "r", "kind": "path"}} {
		if _, err := f.m.ParseSelector(params); !errors.Is(err, ErrInvalid) {
			t.Errorf("params %v: %v", params, err)
		}
	}
	if _, err := f.m.ParseSelector(map[string]string{"csi.storage.k8s.io/pvc/name": "x"}); err != nil {
		t.Errorf("kubernetes parameters are ignored: %v", err)
	}
	if _, err := f.create("e", 2*MiB, MiB, nil); !errors.Is(err, pool.ErrInvalidRange) {
		t.Errorf("inverted range: %v", err)
	}
}

func TestDelete_FreesCapacityAndData(t *testing.T) {
	f := newFixture(t)
	v, err := f.create("v", 4*MiB, 0, map[string]string{"pool": "p"})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(f.cfg.Pools[1].Path, dataDir, volumesDir, v.ID)
	os.MkdirAll(filepath.Join(dir, "a/b"), 0o755)
	os.WriteFile(filepath.Join(dir, "a/b/file"), []byte("data"), 0o644)
	outside := filepath.Join(t.TempDir(), "outside")
	os.WriteFile(outside, []byte("keep"), 0o644)
	os.Symlink(filepath.Dir(outside), filepath.Join(dir, "escape"))
	if err := f.m.Delete(context.Background(), v.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("volume dir survives: %v", err)
	}
	if data, err := os.ReadFile(outside); err != nil || string(data) != "keep" {
		t.Errorf("delete followed a symlink out of the volume: %v", err)
	}
	if got := f.free(map[string]string{"pool": "p"}); got != 20*MiB {
		t.Errorf("free after delete = %d", got)
	}
	if err := f.m.Delete(context.Background(), v.ID); err != nil {
		t.Errorf("second delete: %v", err)
	}
	if err := f.m.Delete(context.Background(), "unknown"); err != nil {
		t.Errorf("unknown ID: %v", err)
	}
	if _, err := f.m.Lookup(v.ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("lookup after delete: %v", err)
	}
}

func TestRestart_KeepsVolumes(t *testing.T) {
	f := newFixture(t)
	a, _ := f.create("a", 2*MiB, 0, nil)
	b, _ := f.create("b", 3*MiB, 0, map[string]string{"pool": "p"})
	before := f.m.List()
	f.restart()
	after := f.m.List()
	if len(after) != 2 || len(before) != 2 {
		t.Fatalf("list before %d after %d", len(before), len(after))
	}
	for i := range after {
		if after[i].ID != before[i].ID || after[i].Capacity != before[i].Capacity || after[i].Name != before[i].Name {
			t.Errorf("volume %d changed: %+v -> %+v", i, before[i], after[i])
		}
	}
	if got := f.free(nil); got != 30*MiB-5*MiB {
		t.Errorf("free after restart = %d", got)
	}
	if v, err := f.create("a", 2*MiB, 2*MiB, nil); err != nil || v.ID != a.ID {
		t.Errorf("replayed create after restart: %v %v", v, err)
	}
	_ = b
}

func TestConverge_HalfDoneOperations(t *testing.T) {
	f := newFixture(t)
	keep, _ := f.create("keep", 2*MiB, 0, nil)
	gone, _ := f.create("gone", 2*MiB, 0, nil)
	p := f.m.pools["r"]
	// A create that crashed after its `creating` record and mkdir.
	half := &state.Record{ID: layout.DirVolumeID(p.Name, "half"), Name: "half", Pool: "r", Kind: "root",
		Capacity: 3 * MiB, Phase: state.Creating, Context: contextOf(p)}
	f.m.store.Put(half)
	os.Mkdir(filepath.Join(p.Dir, dataDir, volumesDir, half.ID), 0o755)
	// A delete that crashed after its `deleting` record and the move to trash.
	del := f.m.recs.Record(gone.ID)
	del.Phase = state.Deleting
	f.m.store.Put(del)
	os.Rename(filepath.Join(p.Dir, dataDir, volumesDir, gone.ID), filepath.Join(p.Dir, dataDir, trashDir, gone.ID))
	// Stray trash.
	os.MkdirAll(filepath.Join(p.Dir, dataDir, trashDir, "stray", "x"), 0o755)

	f.restart()
	vols := f.m.List()
	if len(vols) != 1 || vols[0].ID != keep.ID {
		t.Errorf("after convergence: %v", vols)
	}
	for _, d := range []string{filepath.Join(volumesDir, half.ID), filepath.Join(trashDir, gone.ID), filepath.Join(trashDir, "stray")} {
		if _, err := os.Stat(filepath.Join(p.Dir, dataDir, d)); !os.IsNotExist(err) {
			t.Errorf("%s left behind", d)
		}
	}
	if got := f.free(map[string]string{"pool": "r"}); got != 8*MiB {
		t.Errorf("free = %d, want only keep charged", got)
	}
	if v, err := f.create("half", 3*MiB, 0, nil); err != nil || v.ID != half.ID {
		t.Errorf("retried create: %v %v", v, err)
	}
}

func TestUnhealthyPool_ServesNothingAndDeletesNothing(t *testing.T) {
	f := newFixture(t)
	v, _ := f.create("v", 2*MiB, 0, map[string]string{"pool": "p"})
	data := filepath.Join(f.cfg.Pools[1].Path, dataDir)
	hidden := data + ".unmounted"
	if err := os.Rename(data, hidden); err != nil { // the disk "is not mounted"
		t.Fatal(err)
	}
	if _, err := f.create("w", MiB, 0, map[string]string{"pool": "p"}); !errors.Is(err, pool.ErrInsufficientCapacity) {
		t.Errorf("create in unhealthy pool: %v", err)
	}
	if got := f.free(map[string]string{"pool": "p"}); got != 0 {
		t.Errorf("capacity of unhealthy pool = %d", got)
	}
	if err := f.m.Delete(context.Background(), v.ID); !errors.Is(err, ErrUnhealthy) {
		t.Errorf("delete in unhealthy pool: %v", err)
	}
	f.restart() // marker still missing at start-up: unhealthy, not re-initialised
	if _, err := os.Stat(data); !os.IsNotExist(err) {
		t.Errorf("unhealthy pool was re-initialised")
	}
	if l := f.m.List(); len(l) != 1 {
		t.Errorf("volume of unhealthy pool no longer listed: %v", l)
	}
	os.Rename(hidden, data) // the disk is back
	if err := f.m.Delete(context.Background(), v.ID); err != nil {
		t.Errorf("delete after the disk came back: %v", err)
	}
}

func TestShrunkPool_KeepsServing(t *testing.T) {
	f := newFixture(t)
	a, _ := f.create("a", 6*MiB, 0, map[string]string{"pool": "r"})
	f.cfg.Pools[0].Capacity = pool.Bytes(4 * MiB)
	f.restart()
	if _, err := f.m.Lookup(a.ID); err != nil {
		t.Errorf("volume of shrunk pool: %v", err)
	}
	if got := f.free(map[string]string{"pool": "r"}); got != 0 {
		t.Errorf("free of shrunk pool = %d", got)
	}
}

func TestCheckHealth_PoolArrivingLate(t *testing.T) {
	base := t.TempDir()
	late := filepath.Join(base, "late")
	cfg := &pool.Config{Pools: []pool.Spec{{Name: "p", Kind: pool.Path, Path: late}}}
	log := logrus.New()
	log.SetOutput(io.Discard)
	m, err := New(filepath.Join(base, "state"), cfg, logrus.NewEntry(log))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	create := func() error {
		_, err := m.Create(context.Background(), CreateRequest{Name: "v", Required: MiB})
		return err
	}
	if err := create(); !errors.Is(err, pool.ErrInsufficientCapacity) {
		t.Fatalf("create in a missing pool: %v", err)
	}
	if err := os.Mkdir(late, 0o755); err != nil { // the disk is mounted at last
		t.Fatal(err)
	}
	m.CheckHealth()
	if avail, _ := m.Capacity(Selector{}, false); avail == 0 {
		t.Errorf("capacity of the recovered pool is 0")
	}
	if err := create(); err != nil {
		t.Errorf("create after recovery: %v", err)
	}
}

// A pool that says `quota: required` on a filesystem that cannot enforce
// capacity (the test's temp dir has no project quota) hands nothing out,
// and says it is unhealthy: capacity 0, Healthy false, CreateVolume refused.
func TestQuotaRequiredUnmet_HandsNothingOut(t *testing.T) {
	base := t.TempDir()
	spec := pool.Spec{Name: "strict", Kind: pool.Root, Path: filepath.Join(base, "root"), Capacity: pool.Bytes(10 * MiB)}
	log := logrus.New()
	log.SetOutput(io.Discard)
	open := func(quota pool.QuotaMode) *Manager {
		spec.Quota = quota
		m, err := New(filepath.Join(base, "state"), &pool.Config{Pools: []pool.Spec{spec}}, logrus.NewEntry(log))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	// A volume made before the operator asked for quota: required.
	m := open(pool.QuotaAuto)
	sel, err := m.ParseSelector(nil)
	if err != nil {
		t.Fatal(err)
	}
	held, err := m.Create(context.Background(), CreateRequest{Name: "held", Required: MiB, Selector: sel})
	if err != nil {
		t.Fatal(err)
	}
	m.Close()
	m = open(pool.QuotaRequired)
	defer m.Close()
	p := m.Pools()[0]
	if p.Enforcement() != "" {
		t.Skipf("the temp dir's filesystem enforces %s: nothing to test", p.Enforcement())
	}
	if p.Healthy() {
		t.Error("a quota: required pool without enforcement says it is healthy")
	}
	if avail, _ := m.Capacity(sel, false); avail != 0 {
		t.Errorf("capacity = %d, want 0", avail)
	}
	if _, err = m.Create(context.Background(), CreateRequest{Name: "v", Required: MiB, Selector: sel}); err == nil || len(m.List()) != 1 {
		t.Fatalf("CreateVolume in a quota: required pool without enforcement: %v, %d volumes", err, len(m.List()))
	}
	if _, err := m.Expand(context.Background(), held.ID, 2*MiB, 0); !errors.Is(err, ErrUnhealthy) {
		t.Errorf("expand in a quota: required pool without enforcement: %v, want ErrUnhealthy", err)
	}
}

// Pools on one filesystem share its room: together they never offer more
// than it can still hold, however large their capacities.
func TestCapacity_PoolsShareTheirFilesystem(t *testing.T) {
	base := t.TempDir()
	huge := pool.Bytes(1 << 50)
	cfg := &pool.Config{Pools: []pool.Spec{
		{Name: "a", Kind: pool.Path, Path: filepath.Join(base, "a"), Capacity: huge},
		{Name: "b", Kind: pool.Path, Path: filepath.Join(base, "b"), Capacity: huge},
	}}
	for _, s := range cfg.Pools {
		if err := os.Mkdir(s.Path, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	log := logrus.New()
	log.SetOutput(io.Discard)
	m, err := New(filepath.Join(base, "state"), cfg, logrus.NewEntry(log))
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	sel, err := m.ParseSelector(map[string]string{"kind": "path"})
	if err != nil {
		t.Fatal(err)
	}
	avail, maxVol := m.Capacity(sel, false)
	_, free, ok := m.Pools()[0].Filesystem()
	if !ok || avail <= 0 || avail > free || maxVol > free {
		t.Errorf("two pools on a filesystem with %d bytes free offer %d (largest volume %d)", free, avail, maxVol)
	}
}

// A pool unhealthy at start-up is converged when it comes back: a delete a
// crash interrupted after its move to the trash is finished (the volume is
// no longer listed, its capacity is free), and the orphan and stray trash
// start-up could not sweep are swept, without waiting for a CO's retry.
func TestCheckHealth_ConvergesAPoolThatComesBack(t *testing.T) {
	f := newFixture(t)
	keep, _ := f.create("keep", 2*MiB, 0, map[string]string{"pool": "p"})
	gone, _ := f.create("gone", 3*MiB, 0, map[string]string{"pool": "p"})
	p := f.m.pools["p"]
	data := filepath.Join(f.cfg.Pools[1].Path, dataDir)
	// A delete that crashed after the move to the trash, and an orphan.
	if err := os.Rename(filepath.Join(data, volumesDir, gone.ID), filepath.Join(data, trashDir, gone.ID)); err != nil {
		t.Fatal(err)
	}
	orphan := layout.DirVolumeID(p.Name, "orphan")
	os.Mkdir(filepath.Join(data, volumesDir, orphan), 0o755)
	hidden := data + ".unmounted"
	if err := os.Rename(data, hidden); err != nil { // the disk "is not mounted" at start-up
		t.Fatal(err)
	}
	f.restart()
	if n := len(f.m.List()); n != 2 {
		t.Fatalf("unhealthy at start-up: %d volumes listed, want both kept", n)
	}
	os.Rename(hidden, data) // the disk is back
	f.m.CheckHealth()
	vols := f.m.List()
	if len(vols) != 1 || vols[0].ID != keep.ID {
		t.Errorf("after the pool came back: %v, want only %s", vols, keep.ID)
	}
	for _, d := range []string{filepath.Join(trashDir, gone.ID), filepath.Join(volumesDir, orphan)} {
		if _, err := os.Stat(filepath.Join(data, d)); !os.IsNotExist(err) {
			t.Errorf("%s left behind: %v", d, err)
		}
	}
	if got := f.free(map[string]string{"pool": "p"}); got != 18*MiB {
		t.Errorf("free = %d, want %d (only keep charged)", got, 18*MiB)
	}
}
