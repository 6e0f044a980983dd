package index

import (
	"testing"

	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/state"
)

// The index stores copies and hands out copies; its generation moves with
// every record written or dropped, and only then.
func TestIndex_CopiesAndGen(t *testing.T) {
	store, err := state.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	ctx := map[string]string{"pool": "m"}
	x := New(store, func(pool string) map[string]string {
		if pool == "m" {
			return ctx
		}
		return nil
	})
	disk := layout.DiskID("m", "/mnt/d1")
	r := &state.Record{ID: layout.ClaimID(disk, "a"), Name: "a", Pool: "m", Kind: state.KindMount, Phase: state.Ready, Capacity: 1 << 20,
		Context: map[string]string{"pool": "m"}}
	gen := x.Gen()
	if err := x.Put(r); err != nil {
		t.Fatal(err)
	}
	if x.Gen() == gen {
		t.Fatal("a put did not move the generation")
	}
	gen = x.Gen()
	r.Capacity = 2 << 20 // the caller's: the index's copy is not touched
	got := x.Record(r.ID)
	if got == nil || got.Capacity != 1<<20 {
		t.Fatalf("Record = %+v, want the capacity put", got)
	}
	got.Capacity = 3 << 20
	if x.Record(r.ID).Capacity != 1<<20 {
		t.Fatal("a copy handed out changed the index")
	}
	if b := x.ByName("a"); b == nil || b.ID != r.ID {
		t.Fatalf("ByName = %+v", b)
	}
	if b := x.ByDisk("m", disk); b == nil || b.ID != r.ID {
		t.Fatalf("ByDisk = %+v", b)
	}
	if n := len(x.MountRecords()); n != 1 || !x.HasPool("m") || x.HasPool("other") || x.Counts()["m"] != 1 {
		t.Fatalf("MountRecords %d, HasPool, Counts %v", n, x.Counts())
	}
	x.Each(func(r *state.Record) {
		if r.Context["pool"] != "m" {
			t.Errorf("Each: context %v", r.Context)
		}
	})
	if x.Gen() != gen {
		t.Fatal("reads moved the generation")
	}
	if err := x.Drop(r); err != nil {
		t.Fatal(err)
	}
	if x.Gen() == gen || x.Record(r.ID) != nil || x.ByName("a") != nil || x.ByDisk("m", disk) != nil || len(x.Records()) != 0 {
		t.Fatal("a dropped record is still indexed, or the generation did not move")
	}
}
