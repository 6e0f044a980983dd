package testutil

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// recorder is a testing.TB that collects cleanups and errors instead of
// acting on them, so that a test can run a helper's cleanup by hand and
// check what it reports.
type recorder struct {
	testing.TB
	cleanups []func()
	errors   []string
}

func (r *recorder) Cleanup(f func())                  { r.cleanups = append(r.cleanups, f) }
func (r *recorder) Errorf(format string, args ...any) { r.errors = append(r.errors, format) }

// runCleanups runs the collected cleanups, last registered first.
func (r *recorder) runCleanups() {
	for i := len(r.cleanups) - 1; i >= 0; i-- {
		r.cleanups[i]()
	}
	r.cleanups = nil
}

func TestShortTempDir(t *testing.T) {
	var dir string
	t.Run("create", func(t *testing.T) {
		dir = ShortTempDir(t)
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			t.Fatalf("ShortTempDir() = %q, not a directory: %v", dir, err)
		}
		// Room for a socket name and more below it.
		if len(dir) > 32 {
			t.Errorf("ShortTempDir() = %q, %d bytes long, want at most 32", dir, len(dir))
		}
		if err := os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755); err != nil {
			t.Fatal(err)
		}
	})
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still exists after the test: %v", dir, err)
	}
}

func TestShortTempDir_DetachesLeftoverMounts(t *testing.T) {
	RequireRoot(t)
	r := &recorder{TB: t}
	dir := ShortTempDir(r)
	outer := filepath.Join(dir, "outer")
	inner := filepath.Join(outer, "inner")
	mountTmpfs(t, outer)
	if err := os.WriteFile(filepath.Join(outer, "data"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	mountTmpfs(t, inner)
	mountTmpfs(t, inner) // stacked on the first

	r.runCleanups()

	if len(r.errors) != 3 {
		t.Errorf("cleanup reported %d errors, want one per leftover mount (3): %q", len(r.errors), r.errors)
	}
	if mps, _ := ListMounts(dir); len(mps) > 0 {
		t.Errorf("still mounted after cleanup: %q", mps)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s still exists after cleanup: %v", dir, err)
	}
}

func TestMounts(t *testing.T) {
	RequireRoot(t)
	dir := ShortTempDir(t)
	if got := Mounts(t, dir); len(got) != 0 {
		t.Fatalf("Mounts(new dir) = %q, want none", got)
	}
	b := filepath.Join(dir, "b")
	a := filepath.Join(dir, "a")
	mountTmpfs(t, b)
	mountTmpfs(t, a)
	mountTmpfs(t, a)
	// A sibling whose name extends dir's must not count as below it.
	sibling := dir + "x"
	t.Cleanup(func() { _ = os.Remove(sibling) }) // after the unmount
	mountTmpfs(t, sibling)

	want := []string{a, a, b}
	if got := Mounts(t, dir); !slices.Equal(got, want) {
		t.Errorf("Mounts(%s) = %q, want %q", dir, got, want)
	}
	if got := Mounts(t, dir+"/./"); !slices.Equal(got, want) {
		t.Errorf("Mounts(%s/./) = %q, want %q", dir, got, want)
	}
	if got := Mounts(t, b); !slices.Equal(got, []string{b}) {
		t.Errorf("Mounts(%s) = %q, want only itself", b, got)
	}
	if got := Mounts(t, filepath.Join(dir, "missing")); len(got) != 0 {
		t.Errorf("Mounts(missing dir) = %q, want none", got)
	}
}

func TestLoopDisk(t *testing.T) {
	RequireRoot(t)
	for _, tc := range []struct {
		fstype  string
		sizeMiB int
		magic   int64
	}{
		{fstype: "ext4", sizeMiB: 64, magic: unix.EXT4_SUPER_MAGIC},
		{fstype: "xfs", sizeMiB: 300, magic: unix.XFS_SUPER_MAGIC},
	} {
		t.Run(tc.fstype, func(t *testing.T) {
			dir := ShortTempDir(t)
			var mp, device string
			t.Run("make", func(t *testing.T) {
				mp = LoopDisk(t, dir, tc.sizeMiB, tc.fstype)
				if got := Mounts(t, dir); !slices.Equal(got, []string{mp}) {
					t.Fatalf("mounted below %s: %q, want only %s", dir, got, mp)
				}
				device = mountSource(t, mp)
				if !strings.HasPrefix(device, "/dev/loop") {
					t.Errorf("%s is mounted from %q, want a loop device", mp, device)
				}
				var st unix.Statfs_t
				if err := unix.Statfs(mp, &st); err != nil {
					t.Fatal(err)
				}
				if st.Type != tc.magic {
					t.Errorf("filesystem type %#x, want %#x (%s)", st.Type, tc.magic, tc.fstype)
				}
				size := int64(st.Blocks) * st.Bsize
				if limit := int64(tc.sizeMiB) << 20; size > limit || size < limit/2 {
					t.Errorf("filesystem size %d bytes, want at most %d and more than half", size, limit)
				}
				if err := os.WriteFile(filepath.Join(mp, "data"), []byte("x"), 0o600); err != nil {
					t.Errorf("writing to the disk: %v", err)
				}
			})
			if got := Mounts(t, dir); len(got) != 0 {
				t.Errorf("still mounted after the test: %q", got)
			}
			if _, err := os.Stat(mp + ".img"); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("disk image still exists: %v", err)
			}
			if _, err := os.Stat(mp); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("mount point still exists: %v", err)
			}
			if device != "" {
				backing := filepath.Join("/sys/block", filepath.Base(device), "loop", "backing_file")
				if data, err := os.ReadFile(backing); err == nil {
					t.Errorf("%s is still attached to %s", device, strings.TrimSpace(string(data)))
				}
			}
		})
	}
}

func TestLoopDisk_FailureCleansUp(t *testing.T) {
	RequireRoot(t)
	for _, tc := range []struct {
		name    string
		sizeMiB int
		fstype  string
	}{
		{name: "unsupported filesystem type", sizeMiB: 64, fstype: "vfat"},
		// The image exists when mkfs.xfs refuses it.
		{name: "mkfs fails on a disk too small", sizeMiB: 8, fstype: "xfs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &recorder{TB: t}
			dir := t.TempDir()
			done := make(chan struct{})
			go func() {
				defer close(done)
				defer func() { _ = recover() }()
				LoopDisk(&fatalRecorder{recorder: r}, dir, tc.sizeMiB, tc.fstype)
			}()
			<-done
			if len(r.errors) != 1 {
				t.Errorf("LoopDisk reported %d errors, want 1: %q", len(r.errors), r.errors)
			}
			r.runCleanups()
			if len(r.errors) != 1 {
				t.Errorf("cleanup reported errors: %q", r.errors[1:])
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 0 {
				t.Errorf("left behind after a failed LoopDisk: %v", entries)
			}
		})
	}
}

// fatalRecorder is a recorder whose Fatalf stops the helper by panicking
// (the caller recovers), where testing.T would call runtime.Goexit.
type fatalRecorder struct{ *recorder }

func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.errors = append(f.errors, format)
	panic("fatal")
}

func TestWriteConfig(t *testing.T) {
	dir := t.TempDir()
	path := WriteConfig(t, dir, "pools: []\n")
	path2 := WriteConfig(t, dir, "pools:\n- name: a\n")
	if path != path2 || filepath.Dir(path) != dir {
		t.Errorf("WriteConfig returned %s then %s, want one file in %s", path, path2, dir)
	}
	if data, err := os.ReadFile(path); err != nil || string(data) != "pools:\n- name: a\n" {
		t.Errorf("config holds %q (%v), want the last content", data, err)
	}
}

func TestModuleRoot(t *testing.T) {
	root, err := ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil || !strings.Contains(string(data), "module github.com/localdisk-csi/localdisk\n") {
		t.Errorf("ModuleRoot() = %s, whose go.mod is not localdisk's: %v", root, err)
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

// mountSource returns the source of the mount at mountpoint.
func mountSource(t *testing.T, mountpoint string) string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(data)) {
		fields := strings.Fields(line)
		if len(fields) > 4 && fields[4] == mountpoint {
			if i := slices.Index(fields, "-"); i >= 0 && i+2 < len(fields) {
				return fields[i+2]
			}
		}
	}
	t.Fatalf("%s is not mounted", mountpoint)
	return ""
}
