package capacity

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/pool"
)

const MiB = 1 << 20

func TestUsage_OwnBytesOnly(t *testing.T) {
	base := t.TempDir()
	p := NewPool(pool.New(pool.Spec{Name: "r", Kind: pool.Root, Path: base}, 10*MiB, nil), base)
	data := filepath.Join(base, layout.DataDir)
	dir := filepath.Join(data, layout.VolumesDir, "v")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 2*MiB)
	for i := range buf {
		buf[i] = 1 // not sparse
	}
	os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755)
	os.WriteFile(filepath.Join(dir, "a", "b", "f"), buf, 0o644)
	os.Link(filepath.Join(dir, "a", "b", "f"), filepath.Join(dir, "hardlink")) // counted once
	outside := filepath.Join(t.TempDir(), "big")
	os.WriteFile(outside, buf, 0o644)
	os.Symlink(filepath.Dir(outside), filepath.Join(dir, "link")) // never followed

	var c UsageCache
	measure := func() Usage {
		t.Helper()
		f, err := os.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		u, err := c.Measure(p, "v", 0, f, func() (*os.Root, error) { return os.OpenRoot(data) }, false)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	u := measure()
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
	os.WriteFile(filepath.Join(dir, "g"), buf, 0o644)
	if again := measure(); again.Bytes != u.Bytes {
		t.Errorf("usage not cached: %d then %d", u.Bytes, again.Bytes)
	}
	if c.Cached("v").Bytes != u.Bytes {
		t.Error("Cached does not hold the measurement")
	}
	c.Forget("v")
	if c.Cached("v").Bytes != 0 {
		t.Error("Forget kept the measurement")
	}
}
