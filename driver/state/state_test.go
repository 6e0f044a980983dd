package state

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/localdisk-csi/localdisk/driver/layout"
)

func rec(id string) *Record {
	return &Record{ID: id, Name: "name-" + id, Pool: "p", Kind: "root", Capacity: 1 << 20,
		Phase: Ready, Context: map[string]string{"pool": "p"}}
}

func TestStore_PutLoadDeleteAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "c"} {
		if err := s.Put(rec(id)); err != nil {
			t.Fatal(err)
		}
	}
	r := rec("b")
	r.Phase = Deleting
	if err := s.Put(r); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("c"); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete("c"); err != nil {
		t.Errorf("deleting a missing record: %v", err)
	}
	s.Close()

	s, err = Open(dir) // "restart"
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	recs, bad, err := s.Load()
	if err != nil || len(bad) > 0 {
		t.Fatalf("load: %v %v", err, bad)
	}
	got := map[string]Phase{}
	for _, r := range recs {
		got[r.ID] = r.Phase
		if r.Context["pool"] != "p" || r.Version != Version {
			t.Errorf("record %s lost fields: %+v", r.ID, r)
		}
	}
	if len(got) != 2 || got["a"] != Ready || got["b"] != Deleting {
		t.Errorf("records = %v", got)
	}
	for _, p := range []string{dir, filepath.Join(dir, layout.RecordsDir), filepath.Join(dir, layout.RecordsDir, "a.json")} {
		fi, _ := os.Stat(p)
		if perm := fi.Mode().Perm(); perm&0o077 != 0 {
			t.Errorf("%s has mode %o, want no group/other access", p, perm)
		}
	}
}

func TestStore_TornAndCorruptFiles(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Put(rec("good")); err != nil {
		t.Fatal(err)
	}
	vols := filepath.Join(dir, layout.RecordsDir)
	// A crash mid-write leaves a temp file: the old record is the truth.
	os.WriteFile(filepath.Join(vols, layout.TempRecordFile("good")), []byte(`{"id":"go`), 0o600)
	os.WriteFile(filepath.Join(vols, layout.TempRecordFile("other")), nil, 0o600)
	recs, bad, err := s.Load()
	if err != nil || len(bad) != 0 || len(recs) != 1 || recs[0].ID != "good" {
		t.Fatalf("with temp files: %v %v %v", recs, bad, err)
	}
	if ents, _ := os.ReadDir(vols); len(ents) != 1 {
		t.Errorf("temp files not removed: %v", ents)
	}
	// Truncated, empty, garbage and mismatched records are reported, never dropped.
	os.WriteFile(filepath.Join(vols, "trunc.json"), []byte(`{"version":1,"id":"trunc"`), 0o600)
	os.WriteFile(filepath.Join(vols, "empty.json"), nil, 0o600)
	os.WriteFile(filepath.Join(vols, "junk.json"), []byte("\x00\x01garbage"), 0o600)
	os.WriteFile(filepath.Join(vols, "other.json"), []byte(`{"version":1,"id":"x","name":"n","pool":"p","capacity":1,"phase":"ready"}`), 0o600)
	os.WriteFile(filepath.Join(vols, "phase.json"), []byte(`{"version":1,"id":"phase","name":"n","pool":"p","capacity":1,"phase":"odd"}`), 0o600)
	os.WriteFile(filepath.Join(vols, "Bad Name.json"), []byte(`{}`), 0o600)
	// A name is required, except of a MOUNT record (a pre-existing disk
	// held for its erase).
	os.WriteFile(filepath.Join(vols, "noname.json"), []byte(`{"version":1,"id":"noname","pool":"p","kind":"root","capacity":1,"phase":"ready"}`), 0o600)
	os.WriteFile(filepath.Join(vols, "disk.json"), []byte(`{"version":1,"id":"disk","pool":"p","kind":"mount","capacity":1,"phase":"deleting","erase":{"method":"zero","offset":0}}`), 0o600)
	recs, bad, err = s.Load()
	if err != nil || len(recs) != 2 {
		t.Fatalf("load: %v %v", recs, err)
	}
	var names []string
	for _, b := range bad {
		names = append(names, b.File)
	}
	if len(bad) != 7 {
		t.Errorf("bad records = %v, want 7", names)
	}
	if msg := bad[0].Error(); !strings.Contains(msg, bad[0].File) {
		t.Errorf("error %q does not name the file", msg)
	}
}

func TestStore_RejectsInvalidIDs(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, id := range []string{"", ".", "..", "../x", "a/b", "A", "-a", strings.Repeat("a", 129), "a\x00"} {
		if err := s.Put(rec(id)); err == nil {
			t.Errorf("Put(%q) succeeded", id)
		}
	}
}

func TestValidID(t *testing.T) {
	for id, want := range map[string]bool{
		"a": true, "root-0123abcd": true, "d_1-x": true, strings.Repeat("a", 128): true,
		"": false, ".": false, "..": false, "A": false, "_a": false, "a.b": false, "a/b": false,
		strings.Repeat("a", 129): false,
	} {
		if ValidID(id) != want {
			t.Errorf("ValidID(%q) = %v", id, !want)
		}
	}
}

// Put writes the format version without changing the caller's record, and
// a Clone shares nothing with its original.
func TestRecord_PutAndCloneLeaveTheOriginal(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	r := rec("a")
	r.Version = 0
	r.Identity = map[string]string{"wwn": "x"}
	r.Erase = &Erase{Method: "zero"}
	if err := s.Put(r); err != nil {
		t.Fatal(err)
	}
	if r.Version != 0 {
		t.Errorf("Put changed the caller's record: version %d", r.Version)
	}
	recs, _, err := s.Load()
	if err != nil || len(recs) != 1 || recs[0].Version != Version {
		t.Fatalf("load after Put: %v %v", recs, err)
	}
	c := r.Clone()
	c.Context["pool"], c.Identity["wwn"], c.Erase.Offset = "q", "y", 1
	if r.Context["pool"] != "p" || r.Identity["wwn"] != "x" || r.Erase.Offset != 0 {
		t.Errorf("a change to a clone reached the original: %+v %+v", r, r.Erase)
	}
	if c := (&Record{ID: "b"}).Clone(); c.Context != nil || c.Identity != nil || c.Erase != nil {
		t.Errorf("clone of a record without maps or erase: %+v", c)
	}
}
