package mounter

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
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
	useScratch(t, base)
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

// A read-only bind whose remount fails leaves nothing mounted: neither at
// the target, which it never reached, nor on the scratch.
func TestBindLegacy_FailedRemountLeavesNothing(t *testing.T) {
	requireRoot(t)
	base := canonicalTemp(t)
	useScratch(t, base)
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
	saved := remount
	remount = func(string, uintptr) error { return unix.EPERM } // as a security module may
	defer func() { remount = saved }()
	if err := bindLegacy(vfd, target, true); !errors.Is(err, unix.EPERM) {
		t.Fatalf("read-only bind: %v, want the EPERM it met", err)
	}
	if got := mountsBelow(t, base); len(got) != 0 {
		t.Fatalf("a failed read-only bind left %v mounted", got)
	}
	if left, _ := os.ReadDir(filepath.Join(base, "scratch")); len(left) != 0 {
		t.Errorf("scratch directories left: %v", left)
	}
}

// A read-only bind made with mount(2) is read-only in every mount
// namespace and peer it propagates to, not only where the plugin made it
// (a remount alone changes one mount: the host's copy of a target under a
// Bidirectional kubelet dir would stay writable).
func TestBind_ReadOnlyEverywhereItPropagates(t *testing.T) {
	requireRoot(t)
	eachMethod(t, func(t *testing.T) {
		base := canonicalTemp(t)
		useScratch(t, base)
		vol, kubelet, peer := filepath.Join(base, "vol"), filepath.Join(base, "kubelet"), filepath.Join(base, "peer")
		for _, d := range []string{vol, kubelet, peer} {
			os.Mkdir(d, 0o755)
		}
		// kubelet is a shared mount, and peer a peer of it: what one gets,
		// the other gets (as the host's copy of a Bidirectional mount).
		selfBind(t, kubelet, unix.MS_SHARED)
		if err := unix.Mount(kubelet, peer, "", unix.MS_BIND, ""); err != nil {
			t.Fatal(err)
		}
		unmountAtCleanup(t, peer)
		target := filepath.Join(kubelet, "target")
		os.Mkdir(target, 0o755)
		unmountAtCleanup(t, target)
		unmountAtCleanup(t, filepath.Join(peer, "target"))
		if err := BindPath(vol, target, true); err != nil {
			t.Fatal(err)
		}
		for _, at := range []string{target, filepath.Join(peer, "target")} {
			e := table(t).At(at)
			if e == nil {
				t.Fatalf("nothing mounted at %s", at)
			}
			if !ReadOnly(e) {
				t.Errorf("the bind at %s is %s, not read-only", at, e.Options)
			}
			if err := os.WriteFile(filepath.Join(at, "f"), nil, 0o644); !errors.Is(err, unix.EROFS) {
				t.Errorf("write at %s: %v, want EROFS", at, err)
			}
		}
		if err := UnmountAll(target); err != nil {
			t.Fatal(err)
		}
		if e := table(t).At(filepath.Join(peer, "target")); e != nil {
			t.Errorf("the peer's copy outlived the unmount: %+v", e)
		}
		if got := mountsBelow(t, filepath.Join(base, "scratch")); len(got) != 0 {
			t.Errorf("scratch mounts left: %v", got)
		}
	})
}

// SetScratch detaches and removes what a crash left on the scratch.
func TestSetScratch_SweepsLeftovers(t *testing.T) {
	requireRoot(t)
	base := canonicalTemp(t)
	dir := filepath.Join(base, "scratch")
	vol, left := filepath.Join(base, "vol"), filepath.Join(dir, "ro-123")
	os.Mkdir(vol, 0o755)
	os.MkdirAll(left, 0o700)
	unmountAtCleanup(t, left)
	if err := unix.Mount(vol, left, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	useScratch(t, base)
	if got := mountsBelow(t, dir); len(got) != 0 {
		t.Errorf("left mounted after SetScratch: %v", got)
	}
	if _, err := os.Stat(left); !os.IsNotExist(err) {
		t.Errorf("the leftover scratch directory is still there: %v", err)
	}
}

// useScratch sets base/scratch as the scratch directory for the test.
func useScratch(t *testing.T, base string) {
	t.Helper()
	scratch.mu.Lock()
	saved := scratch.dir
	scratch.mu.Unlock()
	t.Cleanup(func() { scratch.mu.Lock(); scratch.dir = saved; scratch.mu.Unlock() })
	if err := SetScratch(filepath.Join(base, "scratch")); err != nil {
		t.Fatal(err)
	}
}

// selfBind makes dir a mount of its own with the given propagation.
func selfBind(t *testing.T, dir string, propagation uintptr) {
	t.Helper()
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	unmountAtCleanup(t, dir)
	if err := unix.Mount("", dir, "", propagation, ""); err != nil {
		t.Fatal(err)
	}
}

// mountsBelow lists the mount points strictly below dir.
func mountsBelow(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	for _, e := range table(t) {
		if strings.HasPrefix(e.Mountpoint, dir+"/") {
			out = append(out, e.Mountpoint)
		}
	}
	return out
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
