package volume

import (
	"errors"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/pool"
	"github.com/localdisk-csi/localdisk/driver/state"
)

// The legacy phase is fenced: no code of the driver but legacy.go (and the
// state package that reads it) names state.Creating.
func TestLegacy_Fenced(t *testing.T) {
	root := ".."
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") ||
			strings.HasPrefix(p, filepath.Join(root, "state")+"/") || p == filepath.Join(root, "volume", "legacy.go") {
			return err
		}
		f, err := parser.ParseFile(token.NewFileSet(), p, nil, 0)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if sel, ok := n.(*ast.SelectorExpr); ok && sel.Sel.Name == "Creating" {
				if x, ok := sel.X.(*ast.Ident); ok && x.Name == "state" {
					t.Errorf("%s names state.Creating: the legacy phase belongs in driver/volume/legacy.go", p)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Start-up settles every `creating` record a crash under an older version
// left: an empty or missing directory is rolled back (capacity released),
// one that holds data is made ready, and a MOUNT claim is ready at once.
func TestLegacy_CreatingSettledAtStart(t *testing.T) {
	f := newFixture(t)
	f.cfg.Pools = append(f.cfg.Pools, pool.Spec{Name: "m", Kind: pool.Mount,
		Disks: []pool.DiskSpec{{Path: filepath.Join(t.TempDir(), "d1")}}})
	f.restart()
	r, m := f.m.pools["r"], f.m.pools["m"]
	creating := func(p *Pool, id, name string, size int64) *state.Record {
		rec := &state.Record{ID: id, Name: name, Pool: p.Name, Kind: string(p.Kind), Capacity: size,
			Phase: state.Creating, Context: contextOf(p)}
		if err := f.m.store.Put(rec); err != nil {
			t.Fatal(err)
		}
		return rec
	}
	missing := creating(r, layout.DirVolumeID(r.Name, "missing"), "missing", 2*MiB)
	full := creating(r, layout.DirVolumeID(r.Name, "full"), "full", 3*MiB)
	dir := filepath.Join(r.Dir, dataDir, volumesDir, full.ID)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "data"), []byte("kept"), 0o644); err != nil {
		t.Fatal(err)
	}
	claim := creating(m, layout.ClaimID(m.Disks[0].ID, "claim"), "claim", 0)

	f.restart()
	if f.m.recs.Record(missing.ID) != nil {
		t.Error("a `creating` record without a directory was not rolled back")
	}
	for _, rec := range []*state.Record{full, claim} {
		if got := f.m.recs.Record(rec.ID); got == nil || got.Phase != state.Ready {
			t.Errorf("%s after start-up: %+v, want ready", rec.Name, got)
		}
	}
	if data, err := os.ReadFile(filepath.Join(dir, "data")); err != nil || string(data) != "kept" {
		t.Errorf("the data of the volume made ready: %q, %v", data, err)
	}
	if got := f.free(map[string]string{layout.ParamPool: "r"}); got != 10*MiB-3*MiB {
		t.Errorf("free = %d, want only the volume made ready charged", got)
	}
}

// A `creating` record start-up could not settle (its pool was unhealthy)
// is busy until a CreateVolume of its name finishes it.
func TestLegacy_CreatingFinishedByItsCreate(t *testing.T) {
	f := newFixture(t)
	p := f.m.pools["p"]
	rec := &state.Record{ID: layout.DirVolumeID(p.Name, "late"), Name: "late", Pool: "p", Kind: string(p.Kind),
		Capacity: 2 * MiB, Phase: state.Creating, Context: contextOf(p)}
	if err := f.m.store.Put(rec); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(f.cfg.Pools[1].Path, dataDir)
	if err := os.Rename(data, data+".unmounted"); err != nil { // the disk "is not mounted"
		t.Fatal(err)
	}
	f.restart()
	if _, err := f.m.Lookup(rec.ID); !errors.Is(err, ErrBusy) {
		t.Errorf("lookup of an unsettled `creating` volume: %v, want ErrBusy", err)
	}
	if err := os.Rename(data+".unmounted", data); err != nil {
		t.Fatal(err)
	}
	v, err := f.create("late", 2*MiB, 0, map[string]string{layout.ParamPool: "p"})
	if err != nil || v.ID != rec.ID {
		t.Fatalf("the retried create: %v, %v", v, err)
	}
	if got := f.m.recs.Record(rec.ID); got == nil || got.Phase != state.Ready {
		t.Errorf("record after the retried create: %+v, want ready", got)
	}
	if _, err := os.Stat(filepath.Join(data, volumesDir, rec.ID)); err != nil {
		t.Errorf("the volume's directory: %v", err)
	}
}
