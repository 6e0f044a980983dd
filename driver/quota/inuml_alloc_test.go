package quota

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// TestInUMLAllocatorSkipsForeignProjects: IDs that the filesystem charges
// (files of another tool's project) or limits (a quota set by hand) are
// never handed out, nor are the IDs marked from records.
func TestInUMLAllocatorSkipsForeignProjects(t *testing.T) {
	fs := umlFS(t)
	const base = 3_000_000
	// base+1: a directory with a file, no limit; base+2: a limit, no file.
	dir := projectDir(t, fs, "foreign", base+1, Limits{})
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := fs.SetLimit(base+2, Limits{Bytes: miB}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.ClearLimit(base + 2) })
	for id, want := range map[uint32]bool{base: false, base + 1: true, base + 2: true, base + 3: false} {
		if got, err := fs.InUse(id); err != nil || got != want {
			t.Errorf("InUse(%d) = %v, %v; want %v", id, got, err, want)
		}
	}

	var seen []uint32
	err := fs.Projects(base, base+10, func(id uint32, u Usage) error {
		seen = append(seen, id)
		return nil
	})
	if err != nil || len(seen) != 2 || seen[0] != base+1 || seen[1] != base+2 {
		t.Errorf("Projects(%d, %d) = %v, %v; want [%d %d]", base, base+10, seen, err, base+1, base+2)
	}

	a, err := NewAllocator(base, base+4, fs.InUse)
	if err != nil {
		t.Fatal(err)
	}
	a.MarkUsed(base + 4) // a volume record names it
	got1, err1 := a.Allocate()
	got2, err2 := a.Allocate()
	_, err3 := a.Allocate()
	if got1 != base || err1 != nil || got2 != base+3 || err2 != nil || !errors.Is(err3, ErrExhausted) {
		t.Errorf("Allocate: %d %v, %d %v, %v; want %d, %d, ErrExhausted",
			got1, err1, got2, err2, err3, base, base+3)
	}
}

// TestInUMLDeviceFallback runs quota calls through quotactl(2) and the
// block device from the mount table, as on kernels without quotactl_fd.
func TestInUMLDeviceFallback(t *testing.T) {
	umlFS(t)
	forceDevicePath = true
	defer func() { forceDevicePath = false }()
	fs, err := Open(os.Getenv("UML_DISK_QUOTA"))
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	if fs.device != os.Getenv("UML_DISK_QUOTA_DEVICE") {
		t.Fatalf("device %q, want %q", fs.device, os.Getenv("UML_DISK_QUOTA_DEVICE"))
	}
	if err := fs.Supported(); err != nil {
		t.Fatalf("Supported() through %s: %v", fs.device, err)
	}
	const id = 3_000_101
	dir := projectDir(t, fs, "vol", id, Limits{Bytes: miB})
	fill(t, fs, filepath.Join(dir, "data"), miB)
	if u, err := fs.Usage(id); err != nil || u.Limits.Bytes != miB || u.Bytes == 0 {
		t.Errorf("Usage(%d) through %s = %+v, %v", id, fs.device, u, err)
	}
}
