package copytree

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/localdisk-csi/localdisk/test/testutil"
	"golang.org/x/sys/unix"
)

// TestFullExt4 copies a tree of every kind of entry on ext4 with Full and
// compares the trees: types, modes, owners, sizes, times, xattrs, ACLs,
// symlink targets, device numbers, content and hard links; holes stay
// holes.
func TestFullExt4(t *testing.T) {
	disk := testutil.LoopDisk(t, testutil.ShortTempDir(t), 256, "ext4")
	// dst's parent has a default ACL, which dst and what Copy creates in
	// it would inherit.
	parent := filepath.Join(disk, "acl-parent")
	src, dst := filepath.Join(disk, "src"), filepath.Join(parent, "dst")
	must(t, os.Mkdir(src, 0o755))
	must(t, os.Mkdir(parent, 0o755))
	must(t, unix.Setxattr(parent, "system.posix_acl_default", aclXattr([3]uint32{aclUserObj, 7, aclNoID},
		[3]uint32{aclUser, 7, 77}, [3]uint32{aclGroupObj, 7, aclNoID}, [3]uint32{aclMask, 7, aclNoID},
		[3]uint32{aclOther, 7, aclNoID}), 0))
	buildRich(t, src)

	st, err := copyPaths(t, context.Background(), src, dst, Full)
	if err != nil {
		t.Fatalf("Copy: %v", err)
	}
	checkCounts(t, st, richCounts)
	if n := compareTrees(t, src, dst, nil); n != 27 {
		t.Errorf("compared %d entries, want 27", n)
	}
	var want int64
	for _, name := range []string{"file", "empty", "big", "setuid", "setgid", "sparse",
		"hl1", "acl-file", "ro-dir/inner", "sub/deeper/x"} {
		fi, err := os.Lstat(filepath.Join(src, name))
		must(t, err)
		want += fi.Size()
	}
	if st.Bytes != want {
		t.Errorf("Stats.Bytes = %d, want %d", st.Bytes, want)
	}
	if s, d := blocks(t, filepath.Join(src, "sparse")), blocks(t, filepath.Join(dst, "sparse")); d > s+16 || d > 64 {
		t.Errorf("sparse file: %d blocks in the copy, %d in the source: holes were filled", d, s)
	}
	if s, d := dataMap(t, filepath.Join(src, "sparse")), dataMap(t, filepath.Join(dst, "sparse")); !slices.Equal(s, d) || len(s) != 2 {
		t.Errorf("sparse file: data segments %v in the copy, %v in the source (want 2)", d, s)
	}
	if len(st.SkippedMounts) != 0 {
		t.Errorf("SkippedMounts = %v, want none", st.SkippedMounts)
	}
}

// TestSymlinksNeverFollowed: symlinks to a directory, a file and a fifo
// outside the tree, and up the tree, are copied as symlinks; nothing
// outside is read (its access time and ctime stay) nor written, and the
// fifo outside is never opened (Copy would block).
func TestSymlinksNeverFollowed(t *testing.T) {
	testutil.RequireRoot(t)
	dir := testutil.ShortTempDir(t)
	outside, src, dst := filepath.Join(dir, "outside"), filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	must(t, os.MkdirAll(filepath.Join(src, "a/b"), 0o755))
	must(t, os.Mkdir(outside, 0o755))
	secret := filepath.Join(outside, "secret")
	must(t, os.WriteFile(secret, []byte("do not copy"), 0o600))
	must(t, unix.Mkfifo(filepath.Join(outside, "pipe"), 0o600))
	links := map[string]string{
		"to-dir": outside, "to-file": secret, "to-pipe": filepath.Join(outside, "pipe"),
		"up": "../..", "a/b/up": "../../../outside", "to-etc": "/etc", "a/secret": "../../outside/secret",
	}
	for name, target := range links {
		must(t, os.Symlink(target, filepath.Join(src, name)))
	}
	// atime older than mtime: any read of secret would move it (relatime).
	old := []unix.Timespec{unix.NsecToTimespec(1e18), unix.NsecToTimespec(1.1e18)}
	must(t, unix.UtimesNanoAt(unix.AT_FDCWD, secret, old, 0))
	before := statxOf(t, secret)

	done := make(chan error, 1)
	go func() {
		_, err := copyPaths(t, context.Background(), src, dst, Full)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Copy: %v", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("Copy blocked: it opened the fifo outside the tree")
	}
	compareTrees(t, src, dst, nil) // first: reading the copy moves its atimes
	for name, target := range links {
		got, err := os.Readlink(filepath.Join(dst, name))
		if err != nil || got != target {
			t.Errorf("%s: readlink = %q, %v; want the symlink %q", name, got, err, target)
		}
	}
	after := statxOf(t, secret)
	if after.Atime != before.Atime || after.Ctime != before.Ctime || after.Mtime != before.Mtime {
		t.Errorf("the file outside was touched: before %+v, after %+v", before, after)
	}
	if data, _ := os.ReadFile(secret); string(data) != "do not copy" {
		t.Errorf("the file outside now holds %q", data)
	}
}

// dataMap lists the data segments of p (SEEK_DATA, SEEK_HOLE).
func dataMap(t *testing.T, p string) [][2]int64 {
	t.Helper()
	f, err := os.Open(p)
	must(t, err)
	defer f.Close()
	fi, err := f.Stat()
	must(t, err)
	var segs [][2]int64
	for off := int64(0); off < fi.Size(); {
		data, err := unix.Seek(int(f.Fd()), off, unix.SEEK_DATA)
		if err == unix.ENXIO {
			break
		}
		must(t, err)
		hole, err := unix.Seek(int(f.Fd()), data, unix.SEEK_HOLE)
		must(t, err)
		segs = append(segs, [2]int64{data, hole})
		off = hole
	}
	return segs
}

func statxOf(t *testing.T, p string) unix.Statx_t {
	t.Helper()
	var sx unix.Statx_t
	must(t, unix.Statx(unix.AT_FDCWD, p, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_ALL, &sx))
	return sx
}

// TestMountsNotCrossed: a bind mount of a directory of the same
// filesystem, a tmpfs, a bind mount of a file and a nested bind mount
// inside the source become empty entries owned by their parent's owner,
// are listed in SkippedMounts, and nothing under them (mounted or hidden)
// is copied; also with the fallbacks of older kernels (no openat2, no
// STATX_MNT_ID).
func TestMountsNotCrossed(t *testing.T) {
	testutil.RequireRoot(t)
	dir := testutil.ShortTempDir(t)
	src, other := filepath.Join(dir, "src"), filepath.Join(dir, "other")
	for _, d := range []string{"src/bind", "src/tmp", "src/a/b/nested", "other"} {
		must(t, os.MkdirAll(filepath.Join(dir, d), 0o755))
	}
	must(t, os.WriteFile(filepath.Join(other, "mounted-secret"), []byte("x"), 0o644))
	must(t, os.WriteFile(filepath.Join(src, "bind", "hidden-secret"), []byte("x"), 0o644))
	must(t, os.WriteFile(filepath.Join(src, "fbind"), []byte("hidden"), 0o600))
	must(t, os.WriteFile(filepath.Join(src, "a/keep"), []byte("keep"), 0o600))
	must(t, os.Chown(src, 1111, 2222))
	must(t, os.Chown(filepath.Join(src, "a/b"), 3333, 4444))
	mount := func(source, target, fstype string, flags uintptr) {
		must(t, unix.Mount(source, target, fstype, flags, ""))
		t.Cleanup(func() {
			if err := unix.Unmount(target, 0); err != nil {
				t.Errorf("unmount %s: %v", target, err)
			}
		})
	}
	mount(other, filepath.Join(src, "bind"), "", unix.MS_BIND)
	mount("tmpfs", filepath.Join(src, "tmp"), "tmpfs", 0)
	must(t, os.WriteFile(filepath.Join(src, "tmp", "mounted-secret"), []byte("x"), 0o644))
	mount(filepath.Join(other, "mounted-secret"), filepath.Join(src, "fbind"), "", unix.MS_BIND)
	mount(other, filepath.Join(src, "a/b/nested"), "", unix.MS_BIND)
	wantSkipped := []string{"a/b/nested", "bind", "fbind", "tmp"}

	for _, fallback := range []bool{false, true} {
		name := map[bool]string{false: "statx-openat2", true: "fallback"}[fallback]
		t.Run(name, func(t *testing.T) {
			noOpenat2.Store(fallback)
			noMntID.Store(fallback)
			t.Cleanup(func() { noOpenat2.Store(false); noMntID.Store(false) })
			dst := filepath.Join(dir, "dst-"+name)
			st, err := copyPaths(t, context.Background(), src, dst, Full)
			if err != nil {
				t.Fatalf("Copy: %v", err)
			}
			compareTrees(t, src, dst, wantSkipped) // first: reading the copy moves its atimes
			got := slices.Clone(st.SkippedMounts)
			slices.Sort(got)
			if !slices.Equal(got, wantSkipped) {
				t.Errorf("SkippedMounts = %v, want %v", got, wantSkipped)
			}
			for _, m := range wantSkipped {
				var want [3]uint32 // mode, uid, gid
				switch m {
				case "a/b/nested":
					want = [3]uint32{unix.S_IFDIR | 0o755, 3333, 4444}
				case "fbind":
					want = [3]uint32{unix.S_IFREG | 0o644, 1111, 2222}
				default:
					want = [3]uint32{unix.S_IFDIR | 0o755, 1111, 2222}
				}
				var s unix.Stat_t
				must(t, unix.Lstat(filepath.Join(dst, m), &s))
				if got := [3]uint32{s.Mode, s.Uid, s.Gid}; got != want || s.Size != 0 && m == "fbind" {
					t.Errorf("%s: mode, uid, gid %o %d %d (size %d), want %o %d %d, empty",
						m, got[0], got[1], got[2], s.Size, want[0], want[1], want[2])
				}
			}
			must(t, filepath.WalkDir(dst, func(p string, _ os.DirEntry, err error) error {
				if strings.Contains(p, "secret") {
					t.Errorf("%s was copied from a mount", p)
				}
				return err
			}))
		})
	}
}

// TestCancel: a cancelled context stops the copy between entries.
func TestCancel(t *testing.T) {
	testutil.RequireRoot(t)
	dir := testutil.ShortTempDir(t)
	src := filepath.Join(dir, "src")
	must(t, os.Mkdir(src, 0o755))
	for i := range 100 {
		must(t, os.WriteFile(filepath.Join(src, "f"+string(rune('A'+i/26))+string(rune('a'+i%26))), nil, 0o644))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := copyPaths(t, ctx, src, filepath.Join(dir, "dst1"), Full); !errors.Is(err, context.Canceled) {
		t.Errorf("Copy with a cancelled context: %v, want context.Canceled", err)
	}
	if names := readDirNames(t, filepath.Join(dir, "dst1")); len(names) != 0 {
		t.Errorf("a cancelled copy made %v", names)
	}

	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	calls := 0
	testHookEntry = func() {
		if calls++; calls == 10 {
			cancel()
		}
	}
	t.Cleanup(func() { testHookEntry = nil })
	st, err := copyPaths(t, ctx, src, filepath.Join(dir, "dst2"), Full)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Copy cancelled after 10 entries: %v, want context.Canceled", err)
	}
	if names := readDirNames(t, filepath.Join(dir, "dst2")); len(names) != 10 || st.Files != 10 {
		t.Errorf("Copy cancelled at the 10th entry copied %d entries (%d in Stats), want 10", len(names), st.Files)
	}
}

func readDirNames(t *testing.T, p string) []string {
	t.Helper()
	ents, err := os.ReadDir(p)
	must(t, err)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// TestRefusals: a target that is not empty, a target inside the source, an
// unknown method.
func TestRefusals(t *testing.T) {
	testutil.RequireRoot(t)
	dir := testutil.ShortTempDir(t)
	src := filepath.Join(dir, "src")
	must(t, os.MkdirAll(filepath.Join(src, "in/dst"), 0o755))
	must(t, os.WriteFile(filepath.Join(src, "in/f"), nil, 0o644))
	full := filepath.Join(dir, "full")
	must(t, os.Mkdir(full, 0o755))
	must(t, os.WriteFile(filepath.Join(full, "x"), nil, 0o644))
	if _, err := Copy(context.Background(), openDir(t, src), openDir(t, full), Full); err == nil ||
		!strings.Contains(err.Error(), "not empty") {
		t.Errorf("Copy into a non-empty directory: %v", err)
	}
	if _, err := Copy(context.Background(), openDir(t, src), openDir(t, filepath.Join(src, "in/dst")), Full); err == nil ||
		!strings.Contains(err.Error(), "inside the source") {
		t.Errorf("Copy into a directory inside the source: %v", err)
	}
	if _, err := Copy(context.Background(), openDir(t, src), openDir(t, src), Full); err == nil {
		t.Error("Copy of a directory onto itself succeeded")
	}
	if _, err := Copy(context.Background(), openDir(t, src), openDir(t, full), Method(7)); err == nil {
		t.Error("Copy with an unknown method succeeded")
	}
}

// TestXattrsRefused: a target without xattrs (ramfs) takes a tree that
// has none, and fails the copy of a tree that has one (EOPNOTSUPP), rather
// than dropping it.
func TestXattrsRefused(t *testing.T) {
	testutil.RequireRoot(t)
	dir := testutil.ShortTempDir(t)
	ram := filepath.Join(dir, "ram")
	must(t, os.Mkdir(ram, 0o755))
	must(t, unix.Mount("ramfs", ram, "ramfs", 0, ""))
	t.Cleanup(func() {
		if err := unix.Unmount(ram, 0); err != nil {
			t.Errorf("unmount %s: %v", ram, err)
		}
	})
	src := filepath.Join(dir, "src")
	must(t, os.MkdirAll(filepath.Join(src, "d"), 0o755))
	must(t, os.WriteFile(filepath.Join(src, "d", "f"), []byte("data"), 0o640))
	must(t, os.Symlink("d/f", filepath.Join(src, "sl")))
	must(t, unix.Mkfifo(filepath.Join(src, "fifo"), 0o600))
	if _, err := copyPaths(t, context.Background(), src, filepath.Join(ram, "plain"), Full); err != nil {
		t.Fatalf("Copy of a tree without xattrs to ramfs: %v", err)
	}
	compareTrees(t, src, filepath.Join(ram, "plain"), nil)

	must(t, unix.Setxattr(filepath.Join(src, "d", "f"), "user.keep", []byte("me"), 0))
	_, err := copyPaths(t, context.Background(), src, filepath.Join(ram, "xattr"), Full)
	if !errors.Is(err, unix.EOPNOTSUPP) || !strings.Contains(err.Error(), "user.keep") {
		t.Errorf("Copy of an xattr to ramfs: %v, want EOPNOTSUPP naming user.keep", err)
	}
}

// TestReplacedDuringCopy: an entry replaced, between its stat and its
// copy, by a symlink out of the tree (a file by a link to a file, a
// directory by a link to a directory) fails the copy with errChanged; the
// symlink is not followed: nothing outside is read or copied. Also
// without openat2.
func TestReplacedDuringCopy(t *testing.T) {
	testutil.RequireRoot(t)
	for _, victim := range []string{"file", "dir"} {
		for _, fallback := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s-fallback=%v", victim, fallback), func(t *testing.T) {
				noOpenat2.Store(fallback)
				t.Cleanup(func() { noOpenat2.Store(false) })
				dir := testutil.ShortTempDir(t)
				src, outside := filepath.Join(dir, "src"), filepath.Join(dir, "outside")
				must(t, os.MkdirAll(filepath.Join(src, "dir"), 0o755))
				must(t, os.Mkdir(outside, 0o755))
				secret := filepath.Join(outside, "secret")
				must(t, os.WriteFile(secret, []byte("secret"), 0o600))
				must(t, os.WriteFile(filepath.Join(src, "file"), []byte("mine"), 0o600))
				old := []unix.Timespec{unix.NsecToTimespec(1e18), unix.NsecToTimespec(1.1e18)}
				must(t, unix.UtimesNanoAt(unix.AT_FDCWD, secret, old, 0))
				before := statxOf(t, secret)
				target := map[string]string{"file": secret, "dir": outside}[victim]
				testHookStat = func(rel string) {
					if rel == victim {
						tmp := filepath.Join(src, "tmp-link")
						must(t, os.Symlink(target, tmp))
						must(t, unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, filepath.Join(src, victim), unix.RENAME_EXCHANGE))
						must(t, os.RemoveAll(tmp))
					}
				}
				t.Cleanup(func() { testHookStat = nil })
				dst := filepath.Join(dir, "dst")
				_, err := copyPaths(t, context.Background(), src, dst, Full)
				if !errors.Is(err, errChanged) {
					t.Errorf("Copy with %s replaced by a symlink: %v, want errChanged", victim, err)
				}
				if after := statxOf(t, secret); after.Atime != before.Atime || after.Ctime != before.Ctime {
					t.Errorf("the file outside was touched")
				}
				must(t, filepath.WalkDir(dst, func(p string, _ os.DirEntry, err error) error {
					if strings.Contains(p, "secret") {
						t.Errorf("%s was copied from outside", p)
					}
					return err
				}))
			})
		}
	}
}
