package layout_test

import (
	"testing"

	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/state"
)

// The golden IDs were computed with sha256sum(1), not this code. Snapshot
// IDs are in COs (VolumeSnapshotContents) and in the records: a
// failure here is a breaking change of the on-disk format.
var goldenSnapshotIDs = []struct{ pool, name, want string }{
	{"root", "snapshot-1", "root-snap-79c6d61344be00e74b64db50b5b9639b"},
	{"data", "snapshot-0b7e3f3c-6d4e-4b8a-9f0a-1c2d3e4f5a6b", "data-snap-16c2ab67dd420eba49f13ee19f425bc5"},
	{"r", "", "r-snap-e3b0c44298fc1c149afbf4c8996fb924"},
	{"path-mnt-data", "pvc-1", "path-mnt-data-snap-f2868e1aa7cab669517cd9f5ab1b7957"},
}

func TestSnapshotIDGolden(t *testing.T) {
	for _, g := range goldenSnapshotIDs {
		got := layout.SnapshotID(g.pool, g.name)
		if g.want != "" && got != g.want {
			t.Errorf("SnapshotID(%q, %q) = %q, want %q", g.pool, g.name, got, g.want)
		}
		if !state.ValidID(got) {
			t.Errorf("SnapshotID(%q, %q) = %q is not a valid record ID", g.pool, g.name, got)
		}
		if p, ok := layout.SnapshotPool(got); !ok || p != g.pool {
			t.Errorf("SnapshotPool(%q) = %q, %v; want %q", got, p, ok, g.pool)
		}
		// The same hash as the volume of that name: only the separator differs.
		if v := layout.DirVolumeID(g.pool, g.name); v[len(g.pool)+1:] != got[len(g.pool)+6:] {
			t.Errorf("SnapshotID(%q, %q) = %q does not share the name's hash with %q", g.pool, g.name, got, v)
		}
	}
	if layout.SnapshotID("a", "x") == layout.SnapshotID("a", "y") || layout.SnapshotID("a", "x") == layout.SnapshotID("b", "x") {
		t.Error("distinct names or pools share a snapshot ID")
	}
	for _, bad := range []string{"", "root", "root-f2868e1aa7cab669517cd9f5ab1b7957", "-snap-f2868e1aa7cab669517cd9f5ab1b7957", "root-snap-zz868e1aa7cab669517cd9f5ab1b7957", "root-snap-f2868e"} {
		if p, ok := layout.SnapshotPool(bad); ok {
			t.Errorf("SnapshotPool(%q) = %q, true; want not a snapshot ID", bad, p)
		}
	}
}
