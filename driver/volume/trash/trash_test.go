package trash

import (
	"os"
	"path/filepath"
	"testing"
)

func TestMove(t *testing.T) {
	dir := t.TempDir()
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	if err := Move(root, "v1"); err != nil { // nothing to move: an earlier try moved it
		t.Fatal(err)
	}
	for _, d := range []string{filepath.Join(volumesDir, "v1"), filepath.Join(trashDir, "v1")} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, volumesDir, "v1", "data"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Move(root, "v1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, trashDir, "v1", "data")); err != nil {
		t.Fatalf("volume not in the trash: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, volumesDir, "v1")); !os.IsNotExist(err) {
		t.Fatalf("volume still in volumes/: %v", err)
	}
	entries, _ := os.ReadDir(filepath.Join(dir, trashDir))
	if len(entries) != 2 {
		t.Fatalf("trash holds %d entries, want the volume and the leftover moved aside", len(entries))
	}
}
