package layout_test

import (
	"go/parser"
	"go/token"
	"maps"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/localdisk-csi/localdisk/driver/layout"
)

// TestLayout pins the on-disk layout (docs/architecture.md, "State on
// disk"): a change would make the plugin lose the volumes, records and
// markers that an older version left.
func TestLayout(t *testing.T) {
	for got, want := range map[string]string{
		layout.PoolVolumesDir("/p"):              "/p/localdisk/volumes",
		layout.PoolTrashDir("/p"):                "/p/localdisk/trash",
		layout.VolumeDir("/p", "r-1"):            "/p/localdisk/volumes/r-1",
		layout.StateRecordsDir("/s"):             "/s/volumes",
		layout.RecordPath("/s", "r-1"):           "/s/volumes/r-1.json",
		layout.RecordFile("r-1"):                 "r-1.json",
		layout.TempRecordFile("r-1"):             ".tmp-r-1.json",
		layout.PoolFile("data"):                  "data.json",
		layout.DataDir + "/" + layout.MarkerFile: "localdisk/pool.json",
		layout.PoolsDir:                          "pools",
		layout.StagedDir:                         "staged",
		layout.StagingDir:                        "staging",
		layout.ScratchDir:                        "mnt",
		layout.DefaultRootDir:                    "root",
	} {
		if got != want {
			t.Errorf("layout gives %q, want %q", got, want)
		}
	}
	for file, want := range map[string]string{"r-1.json": "r-1", ".tmp-r-1.json": "", "r-1": "", "r-1.json.bak": ""} {
		if id, ok := layout.RecordID(file); id != want || ok != (want != "") {
			t.Errorf("RecordID(%q) = %q, %v; want %q", file, id, ok, want)
		}
	}
	if id, ok := layout.RecordID(layout.RecordFile("d-mnt-d1_f2868e1aa7cab669")); !ok || id != "d-mnt-d1_f2868e1aa7cab669" {
		t.Errorf("RecordID(RecordFile(id)) = %q, %v", id, ok)
	}
}

// TestKeys pins the keys that StorageClasses, Mesos profiles, PVs and node
// labels hold.
func TestKeys(t *testing.T) {
	if layout.ParamPool != "pool" || layout.ParamKind != "kind" || layout.IgnoredParamPrefix != "csi.storage.k8s.io/" {
		t.Errorf("parameter keys %q, %q, %q", layout.ParamPool, layout.ParamKind, layout.IgnoredParamPrefix)
	}
	if got, want := layout.VolumeContext("data", "path"), map[string]string{"pool": "data", "kind": "path"}; !maps.Equal(got, want) {
		t.Errorf("VolumeContext = %v, want %v", got, want)
	}
	if layout.TopologyKey != "topology.localdisk.csi.io/node" {
		t.Errorf("TopologyKey = %q", layout.TopologyKey)
	}
}

// TestLeaf: the package imports only the standard library, so that every
// part of localdisk, the benchmark and the tests can import it.
func TestLeaf(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range file.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if first, _, _ := strings.Cut(p, "/"); strings.Contains(first, ".") {
				t.Errorf("%s imports %s: driver/layout imports only the standard library", f, p)
			}
		}
	}
}
