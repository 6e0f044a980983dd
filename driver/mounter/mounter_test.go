package mounter

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// requireRoot skips (SKIP_TESTS_USING_ROOT=1) or fails when not root.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("SKIP_TESTS_USING_ROOT") == "1" {
		t.Skip("needs root")
	}
	t.Fatal("needs root (set SKIP_TESTS_USING_ROOT=1 to skip)")
}

// canonicalTemp is a temp dir with its symlinks resolved.
func canonicalTemp(t *testing.T) string {
	d, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func unmountAtCleanup(t *testing.T, p string) {
	t.Cleanup(func() {
		for unix.Unmount(p, unix.MNT_DETACH) == nil {
		}
	})
}

func table(t *testing.T) Table {
	tb, err := ReadTable()
	if err != nil {
		t.Fatal(err)
	}
	return tb
}

// eachMethod runs fn once with each way of binding that this kernel has,
// as if Detect had chosen it.
func eachMethod(t *testing.T, fn func(t *testing.T)) {
	detected.once.Do(func() {}) // Detect's probe, if not run yet, never runs
	saved := detected.method
	t.Cleanup(func() { detected.method = saved })
	for _, m := range []Method{MountAPI, Legacy} {
		t.Run(m.String(), func(t *testing.T) {
			if m == MountAPI && probeMountAPI() != nil {
				t.Skipf("this kernel has no new mount API: %v", probeMountAPI())
			}
			detected.method = m
			fn(t)
		})
	}
}

func TestBind_SourcesAndReadOnly(t *testing.T) {
	requireRoot(t)
	eachMethod(t, testBindSourcesAndReadOnly)
}

func testBindSourcesAndReadOnly(t *testing.T) {
	base := canonicalTemp(t)
	useScratch(t, base)
	vol, staging, target := filepath.Join(base, "vol"), filepath.Join(base, "staging"), filepath.Join(base, "target")
	for _, d := range []string{vol, staging, target} {
		os.Mkdir(d, 0o755)
	}
	unmountAtCleanup(t, target)
	unmountAtCleanup(t, staging)
	os.WriteFile(filepath.Join(vol, "f"), []byte("x"), 0o644)

	dir, err := os.Open(vol)
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	if err := BindDir(dir, staging, false); err != nil {
		t.Fatal(err)
	}
	if err := BindPath(staging, target, true); err != nil {
		t.Fatal(err)
	}
	tb := table(t)
	src, err := tb.Locate(vol)
	if err != nil {
		t.Fatal(err)
	}
	se, te := tb.At(staging), tb.At(target)
	if se == nil || te == nil {
		t.Fatalf("mounts missing: staging %v target %v", se, te)
	}
	if SourceOf(se) != src || SourceOf(te) != src {
		t.Errorf("sources: volume %+v staging %+v target %+v", src, SourceOf(se), SourceOf(te))
	}
	if ReadOnly(se) || !ReadOnly(te) {
		t.Errorf("ro flags: staging %v target %v", ReadOnly(se), ReadOnly(te))
	}
	if err := os.WriteFile(filepath.Join(target, "g"), nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Errorf("write through read-only target: %v", err)
	}
	if data, err := os.ReadFile(filepath.Join(target, "f")); err != nil || string(data) != "x" {
		t.Errorf("read through target: %q %v", data, err)
	}
	uses := tb.Uses(vol, src)
	if len(uses) != 2 {
		t.Errorf("uses of the volume = %d, want 2 (staging, target)", len(uses))
	}
	other, _ := tb.Locate(base)
	if n := len(tb.Uses(base, other)); n != 2 {
		t.Errorf("uses below the parent = %d, want 2", n)
	}
	if err := UnmountAll(target); err != nil {
		t.Fatal(err)
	}
	if err := UnmountAll(staging); err != nil {
		t.Fatal(err)
	}
	if tb := table(t); tb.At(target) != nil || tb.At(staging) != nil {
		t.Error("mounts left after unmount")
	}
}

func TestUnmount_NeverFollowsSymlink(t *testing.T) {
	requireRoot(t)
	eachMethod(t, testUnmountNeverFollowsSymlink)
}

func testUnmountNeverFollowsSymlink(t *testing.T) {
	base := canonicalTemp(t)
	src, mnt := filepath.Join(base, "src"), filepath.Join(base, "mnt")
	os.Mkdir(src, 0o755)
	os.Mkdir(mnt, 0o755)
	unmountAtCleanup(t, mnt)
	if err := BindPath(src, mnt, false); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(base, "link")
	os.Symlink(mnt, link)
	if err := UnmountAll(link); err != nil {
		t.Errorf("unmount of a symlink (nothing mounted there): %v", err)
	}
	if table(t).At(mnt) == nil {
		t.Error("the mount behind the symlink was removed")
	}
	// Mounting onto a symlink is refused, not followed.
	if err := BindPath(src, link, false); err == nil {
		t.Error("bind onto a symlink succeeded")
		UnmountAll(link)
	}
}

func TestCanonical(t *testing.T) {
	base := canonicalTemp(t)
	real := filepath.Join(base, "real")
	os.Mkdir(real, 0o755)
	os.Symlink(real, filepath.Join(base, "alias"))
	got, err := Canonical(filepath.Join(base, "alias", "x", "..", "leaf"))
	if err != nil || got != filepath.Join(real, "leaf") {
		t.Errorf("Canonical = %q, %v", got, err)
	}
	for _, bad := range []string{"relative/path", "/", filepath.Join(base, "missing", "leaf")} {
		if _, err := Canonical(bad); err == nil {
			t.Errorf("Canonical(%q) succeeded", bad)
		}
	}
}

func TestSource_Within(t *testing.T) {
	dir := Source{Major: 8, Minor: 1, Root: "/a/b"}
	for s, want := range map[Source]bool{
		{8, 1, "/a/b"}: true, {8, 1, "/a/b/c"}: true, {8, 1, "/a/bc"}: false,
		{8, 1, "/a"}: false, {8, 2, "/a/b"}: false,
	} {
		if s.Within(dir) != want {
			t.Errorf("%+v.Within(%+v) = %v", s, dir, !want)
		}
	}
	if !(Source{8, 1, "/x"}).Within(Source{8, 1, "/"}) {
		t.Error("everything is within the filesystem root")
	}
}
