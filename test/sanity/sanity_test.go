package sanity

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/localdisk-csi/localdisk/test/testutil"
)

// recorder is a testing.TB that collects errors instead of failing.
type recorder struct {
	testing.TB
	errors []string
}

func (r *recorder) Error(args ...any)                 { r.errors = append(r.errors, "error") }
func (r *recorder) Errorf(format string, args ...any) { r.errors = append(r.errors, format) }

func Test_filesBelow(t *testing.T) {
	dir := t.TempDir()
	if files, err := filesBelow(filepath.Join(dir, "missing")); err != nil || len(files) != 0 {
		t.Errorf("filesBelow(missing dir) = %q, %v; want none, no error", files, err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "a", "empty"), 0o755); err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "a", "r1"), filepath.Join(dir, "r2")}
	for _, f := range want {
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if files, err := filesBelow(dir); err != nil || !slices.Equal(files, want) {
		t.Errorf("filesBelow = %q, %v; want %q", files, err, want)
	}
}

func Test_checkNoRecords(t *testing.T) {
	dir := t.TempDir()
	r := &recorder{TB: t}
	checkNoRecords(r, dir, time.Second)
	if len(r.errors) != 0 {
		t.Errorf("errors for an empty directory: %q", r.errors)
	}
	if err := os.WriteFile(filepath.Join(dir, "vol1"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	checkNoRecords(r, dir, 200*time.Millisecond)
	if len(r.errors) != 1 {
		t.Errorf("got %d errors for a record left behind, want 1", len(r.errors))
	}
}

func Test_checkMounts(t *testing.T) {
	testutil.RequireRoot(t)
	dir := testutil.ShortTempDir(t)
	disk, extra := filepath.Join(dir, "disk"), filepath.Join(dir, "extra")
	mountTmpfs(t, disk)
	mountTmpfs(t, extra)

	r := &recorder{TB: t}
	checkMounts(r, dir, []string{disk})
	if len(r.errors) != 1 {
		t.Errorf("got %d errors for one extra mount, want 1: %q", len(r.errors), r.errors)
	}
	r.errors = nil
	checkMounts(r, dir, []string{disk, extra, filepath.Join(dir, "gone")})
	if len(r.errors) != 1 {
		t.Errorf("got %d errors for one disk not mounted, want 1: %q", len(r.errors), r.errors)
	}
}

func Test_leakCheck(t *testing.T) {
	testutil.RequireRoot(t)
	dir := testutil.ShortTempDir(t)
	var l leakCheck

	clean := filepath.Join(dir, "clean")
	if err := os.Mkdir(clean, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := l.remove(clean); err != nil {
		t.Errorf("removing an empty directory: %v", err)
	}

	leaky := filepath.Join(dir, "leaky")
	mountTmpfs(t, filepath.Join(leaky, "target"))
	if err := l.remove(leaky); err != nil {
		t.Errorf("removing a directory with a mount below: %v", err)
	}
	for _, path := range []string{clean, leaky} {
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("%s not removed: %v", path, err)
		}
	}
	if len(l.mounts) != 1 || len(l.nonEmpty) != 1 {
		t.Errorf("noted mounts %q and non-empty directories %q, want one each", l.mounts, l.nonEmpty)
	}
	r := &recorder{TB: t}
	l.report(r)
	if len(r.errors) != 1 {
		t.Errorf("report gave %d errors, want 1 (the mount)", len(r.errors))
	}
}

// mountTmpfs mounts a small tmpfs at dir (created if needed) and unmounts
// it when the test ends, if still mounted.
func mountTmpfs(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatalf("mounting tmpfs at %s: %v", dir, err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
}
