package volume

import (
	"os"
	"path/filepath"
	"testing"
)

func TestUsage_OwnBytesOnly(t *testing.T) {
	f := newFixture(t)
	v, err := f.create("v", 8*MiB, 0, map[string]string{"pool": "r"})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(f.cfg.Pools[0].Path, dataDir, volumesDir, v.ID)
	data := make([]byte, 2*MiB)
	for i := range data {
		data[i] = 1 // not sparse
	}
	os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755)
	os.WriteFile(filepath.Join(dir, "a", "b", "f"), data, 0o644)
	os.Link(filepath.Join(dir, "a", "b", "f"), filepath.Join(dir, "hardlink")) // counted once
	outside := filepath.Join(t.TempDir(), "big")
	os.WriteFile(outside, data, 0o644)
	os.Symlink(filepath.Dir(outside), filepath.Join(dir, "link")) // never followed

	u, err := f.m.Usage(v)
	if err != nil {
		t.Fatal(err)
	}
	if u.Bytes < 2*MiB || u.Bytes > 2*MiB+256<<10 || !u.Exact {
		t.Errorf("bytes = %d (exact %v), want about 2 MiB", u.Bytes, u.Exact)
	}
	if u.Inodes != 5 { // the volume dir, a, a/b, f (twice linked), link
		t.Errorf("inodes = %d, want 5", u.Inodes)
	}
	if u.FreeBytes <= 0 || u.FreeInodes <= 0 {
		t.Errorf("free = %d bytes, %d inodes", u.FreeBytes, u.FreeInodes)
	}
	// Cached: a new file does not show until the cache expires.
	os.WriteFile(filepath.Join(dir, "g"), data, 0o644)
	if again, _ := f.m.Usage(v); again.Bytes != u.Bytes {
		t.Errorf("usage not cached: %d then %d", u.Bytes, again.Bytes)
	}
}
