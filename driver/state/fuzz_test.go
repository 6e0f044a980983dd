package state

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// FuzzValidID: ValidID agrees with the documented shape of a volume ID
// (DESIGN.md), and a valid ID is always a plain, safe file name.
func FuzzValidID(f *testing.F) {
	for _, s := range []string{"root-0123abcd", ".", "..", "a/b", "A", "-a", "a-", "a_b", "a\n", "a\x00",
		strings.Repeat("a", 128), strings.Repeat("a", 129), "", "é", "a.json"} {
		f.Add(s)
	}
	ref := regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`)
	f.Fuzz(func(t *testing.T, id string) {
		want := len(id) <= 128 && ref.MatchString(id) && id != "." && id != ".."
		got := ValidID(id)
		if got != want {
			t.Fatalf("ValidID(%q) = %v, want %v", id, got, want)
		}
		if got && (filepath.Base(id) != id || filepath.Clean(id) != id || strings.ContainsAny(id, "/\x00.")) {
			t.Fatalf("ValidID(%q) accepts an unsafe file name", id)
		}
	})
}

// FuzzLoad: whatever bytes a record file holds, Load neither panics nor
// accepts a record that is not well formed: it is returned as bad instead.
func FuzzLoad(f *testing.F) {
	good := `{"version":1,"id":"root-1","name":"n","pool":"root","kind":"root","capacity":1048576,"phase":"ready"}`
	for _, s := range []string{good, good[:len(good)/2], "", "null", "[]", "{}",
		strings.Replace(good, `"ready"`, `"limbo"`, 1), strings.Replace(good, `1048576`, `-1`, 1),
		strings.Replace(good, `"root-1"`, `"../x"`, 1), good + good, good + "garbage"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		s, err := Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := os.WriteFile(filepath.Join(dir, "volumes", "root-1.json"), data, 0o600); err != nil {
			t.Fatal(err)
		}
		recs, bad, err := s.Load()
		if err != nil {
			t.Fatal(err)
		}
		if len(recs)+len(bad) != 1 {
			t.Fatalf("one file, %d records and %d bad", len(recs), len(bad))
		}
		for _, r := range recs {
			if r.ID != "root-1" || r.Name == "" && r.Kind != KindMount || r.Pool == "" || r.Capacity < 0 || r.Version != Version ||
				(r.Phase != Creating && r.Phase != Ready && r.Phase != Deleting) {
				t.Fatalf("Load accepted a malformed record: %+v", r)
			}
		}
		for _, b := range bad {
			if !strings.Contains(b.Error(), "root-1.json") {
				t.Errorf("the error does not name the file: %v", b)
			}
		}
	})
}
