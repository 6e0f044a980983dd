package mounter

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestDetect_DecidesOnceAndSays(t *testing.T) {
	m, why := Detect()
	m2, why2 := Detect()
	if m != m2 || why != why2 {
		t.Fatalf("Detect changed its answer: %v (%v), then %v (%v)", m, why, m2, why2)
	}
	if (m == Legacy) != (why != nil) {
		t.Errorf("Detect = %v with reason %v: a reason goes with mount(2) only", m, why)
	}
	if os.Geteuid() == 0 && m == Legacy {
		var u unix.Utsname
		_ = unix.Uname(&u)
		t.Logf("kernel %s: binds use %v because %v", unix.ByteSliceToString(u.Release[:]), m, why)
	}
}

// A read-only bind made with mount(2) keeps the per-mount flags of what it
// binds (a bind remount replaces them all: nosuid and nodev would be lost).
func TestBindLegacy_ReadOnlyKeepsMountFlags(t *testing.T) {
	requireRoot(t)
	base := canonicalTemp(t)
	src, target := filepath.Join(base, "src"), filepath.Join(base, "target")
	os.Mkdir(src, 0o755)
	os.Mkdir(target, 0o755)
	unmountAtCleanup(t, src)
	unmountAtCleanup(t, target)
	if err := unix.Mount("tmpfs", src, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=1m"); err != nil {
		t.Fatal(err)
	}
	fd, err := openPath(unix.AT_FDCWD, src)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := bindLegacy(fd, target, true); err != nil {
		t.Fatal(err)
	}
	var st unix.Statfs_t
	if err := unix.Statfs(target, &st); err != nil {
		t.Fatal(err)
	}
	for name, f := range map[string]int64{"ro": unix.ST_RDONLY, "nosuid": unix.ST_NOSUID, "nodev": unix.ST_NODEV, "noexec": unix.ST_NOEXEC} {
		if st.Flags&f == 0 {
			t.Errorf("the read-only bind lost %s (f_flags %#x)", name, st.Flags)
		}
	}
	if err := os.WriteFile(filepath.Join(target, "f"), nil, 0o644); !errors.Is(err, unix.EROFS) {
		t.Errorf("write through the read-only bind: %v, want EROFS", err)
	}
	if err := os.WriteFile(filepath.Join(src, "f"), nil, 0o644); err != nil {
		t.Errorf("the source became read-only too: %v", err)
	}
}

// A remount that fails leaves nothing mounted: the bind is detached again.
func TestBindLegacy_FailedRemountLeavesNothing(t *testing.T) {
	requireRoot(t)
	base := canonicalTemp(t)
	vol, target := filepath.Join(base, "vol"), filepath.Join(base, "target")
	for _, d := range []string{vol, target} {
		os.Mkdir(d, 0o755)
	}
	unmountAtCleanup(t, target)
	vfd, err := openPath(unix.AT_FDCWD, vol)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(vfd)
	if err := bindLegacy(vfd, target, false); err != nil {
		t.Fatal(err)
	}
	if table(t).At(target) == nil {
		t.Fatal("the bind is not in the mount table")
	}
	// The remount fails (as when a security module denies it).
	saved := remount
	remount = func(string, uintptr) error { return unix.EPERM }
	defer func() { remount = saved }()
	parent, err := unix.Open(base, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(parent)
	if err := remountReadOnly(vfd, parent, "target"); !errors.Is(err, unix.EPERM) {
		t.Fatalf("remount: %v, want the EPERM it met", err)
	}
	if e := table(t).At(target); e != nil {
		t.Fatalf("a failed read-only remount left %s mounted (%s)", target, e.Options)
	}
}

// mount(2) is never handed a symlink: at the source or at the target.
func TestBindLegacy_RefusesSymlinks(t *testing.T) {
	requireRoot(t)
	base := canonicalTemp(t)
	dir, target, outside := filepath.Join(base, "dir"), filepath.Join(base, "target"), filepath.Join(base, "outside")
	for _, d := range []string{dir, target, outside} {
		os.Mkdir(d, 0o755)
	}
	unmountAtCleanup(t, target)
	unmountAtCleanup(t, outside)
	link := filepath.Join(base, "link")
	os.Symlink(outside, link)
	fd, err := openPath(unix.AT_FDCWD, dir)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := bindLegacy(fd, link, false); !errors.Is(err, unix.ELOOP) {
		t.Errorf("bind onto a symlink: %v, want ELOOP", err)
	}
	if _, err := openPath(unix.AT_FDCWD, link); !errors.Is(err, unix.ELOOP) {
		t.Errorf("a symlink source: %v, want ELOOP", err)
	}
	if tb := table(t); tb.At(outside) != nil || tb.At(link) != nil || tb.At(target) != nil {
		t.Error("something was mounted")
	}
}

// A mount at the target that is not the bind just made (one raced onto the
// same place) is neither remounted nor detached.
func TestBindLegacy_RemountLeavesAnotherMountAlone(t *testing.T) {
	requireRoot(t)
	base := canonicalTemp(t)
	vol, other, target := filepath.Join(base, "vol"), filepath.Join(base, "other"), filepath.Join(base, "target")
	for _, d := range []string{vol, other, target} {
		os.Mkdir(d, 0o755)
	}
	unmountAtCleanup(t, target)
	if err := BindPath(other, target, false); err != nil {
		t.Fatal(err)
	}
	vfd, err := openPath(unix.AT_FDCWD, vol)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(vfd)
	parent, err := unix.Open(base, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(parent)
	if err := remountReadOnly(vfd, parent, "target"); err == nil {
		t.Fatal("a bind of another directory was taken for the volume's")
	}
	e := table(t).At(target)
	if e == nil || ReadOnly(e) {
		t.Fatalf("the other mount was detached or remounted: %+v", e)
	}
}
