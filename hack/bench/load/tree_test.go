package load

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTreeSizesAddUp(t *testing.T) {
	for _, tr := range []Tree{{Bytes: 1 << 30, Files: 10000}, {Bytes: 8 << 30, Files: 10000}, {Bytes: 3 * page, Files: 3}, {Bytes: 7 * page, Files: 3}} {
		if err := tr.Check(); err != nil {
			t.Fatal(err)
		}
		var sum int64
		lo, hi := tr.Size(0), tr.Size(0)
		for i := range tr.Files {
			s := tr.Size(i)
			sum += s
			lo, hi = min(lo, s), max(hi, s)
			if s%page != 0 {
				t.Fatalf("%+v: file %d is %d bytes, not whole pages", tr, i, s)
			}
		}
		if sum != tr.Bytes || hi-lo > page {
			t.Errorf("%+v: files add up to %d (sizes %d..%d), want %d differing by at most a page", tr, sum, lo, hi, tr.Bytes)
		}
	}
	for _, bad := range []Tree{{Bytes: 4097, Files: 1}, {Bytes: page, Files: 2}, {Bytes: page, Files: 0}} {
		if bad.Check() == nil {
			t.Errorf("%+v: Check accepted it", bad)
		}
	}
}

// TestTreeWriteVerify writes a tree with O_DIRECT (on the disk that holds
// the test's temp dir) and checks that Verify accepts it and refuses a
// changed byte, a missing file and an extra one.
func TestTreeWriteVerify(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	tr := Tree{Bytes: 250 * page, Files: 230, Seed: 7}
	if err := tr.Write(ctx, root); err != nil {
		t.Skipf("O_DIRECT writes in %s: %v", root, err) // tmpfs refuses O_DIRECT
	}
	if n, err := tr.Verify(ctx, root, 10); err != nil || n != 24 {
		t.Fatalf("Verify of the tree written: %d files compared, %v; want 24, nil", n, err)
	}
	if n, err := ReadAll(ctx, root); err != nil || n != tr.Bytes {
		t.Fatalf("ReadAll: %d bytes, %v; want %d", n, err, tr.Bytes)
	}
	if other := (Tree{Bytes: tr.Bytes, Files: tr.Files, Seed: 8}); func() error { _, err := other.Verify(ctx, root, 10); return err }() == nil {
		t.Error("Verify with another seed accepted the tree")
	}

	// One byte changed in a sampled file (index 20, a multiple of 10).
	p := filepath.Join(root, tr.Path(20))
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, 100); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 1
	if _, err := f.WriteAt(b, 100); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := tr.Verify(ctx, root, 10); err == nil || !strings.Contains(err.Error(), "sha256") {
		t.Errorf("Verify after a byte changed: %v, want a sha256 mismatch", err)
	}

	// A file missing, then an extra file.
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Verify(ctx, root, 10); err == nil || !strings.Contains(err.Error(), "229 files") {
		t.Errorf("Verify with a file missing: %v, want 229 files reported", err)
	}
	if err := os.WriteFile(filepath.Join(root, "extra"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, make([]byte, tr.Size(20)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Verify(ctx, root, 10); err == nil || !strings.Contains(err.Error(), "231 files") {
		t.Errorf("Verify with an extra file: %v, want 231 files reported", err)
	}
}
