package copytree

import (
	"bytes"
	"context"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// must fails the test on err.
func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// writeFile writes size bytes of pseudo-random data (no zero runs, so no
// filesystem makes holes of them) to p.
func writeFile(t testing.TB, p string, size int, seed uint64) {
	t.Helper()
	data := make([]byte, size)
	r := rand.New(rand.NewPCG(seed, 1))
	for i := range data {
		data[i] = byte(r.Uint32()) | 1
	}
	must(t, os.WriteFile(p, data, 0o644))
}

// aclXattr encodes a POSIX ACL as the kernel's system.posix_acl_* value:
// version 2, then (tag, perm, id) entries in tag order.
func aclXattr(entries ...[3]uint32) []byte {
	var b bytes.Buffer
	_ = binary.Write(&b, binary.LittleEndian, uint32(2))
	for _, e := range entries {
		_ = binary.Write(&b, binary.LittleEndian, uint16(e[0]))
		_ = binary.Write(&b, binary.LittleEndian, uint16(e[1]))
		_ = binary.Write(&b, binary.LittleEndian, e[2])
	}
	return b.Bytes()
}

const (
	aclUserObj  = 0x01
	aclUser     = 0x02
	aclGroupObj = 0x04
	aclMask     = 0x10
	aclOther    = 0x20
	aclNoID     = 0xffffffff
)

// richCounts are the Stats buildRich's tree copies to (SkippedMounts
// aside).
var richCounts = Stats{Files: 10, Dirs: 4, Symlinks: 5, Others: 4, HardLinks: 3}

// buildRich fills root with every kind of entry the copy must keep: data,
// holes, special modes, owners, xattrs of each namespace, ACLs, hard links
// (also of a fifo), symlinks pointing anywhere, devices, a socket and
// read-only directories; then gives every entry distinct old times,
// children before their directories.
func buildRich(t testing.TB, root string) {
	t.Helper()
	p := func(rel string) string { return filepath.Join(root, rel) }
	for _, d := range []string{"sub", "sub/deeper", "ro-dir", "sticky"} {
		must(t, os.Mkdir(p(d), 0o755))
	}
	must(t, os.WriteFile(p("file"), []byte("hello\n"), 0o644))
	must(t, os.WriteFile(p("empty"), nil, 0o600))
	writeFile(t, p("big"), 3<<20+17, 1)
	for name, mode := range map[string]os.FileMode{"setuid": 0o4755, "setgid": 0o2750} {
		must(t, os.WriteFile(p(name), []byte("#!/bin/true\n"), 0o644))
		must(t, os.Chown(p(name), 1234, 5678))
		must(t, os.Chmod(p(name), mode))
	}
	// A sparse file: data at 0 and at 4 MiB, a trailing hole.
	f, err := os.Create(p("sparse"))
	must(t, err)
	_, err = f.WriteAt(bytes.Repeat([]byte{7}, 4096), 0)
	must(t, err)
	_, err = f.WriteAt(bytes.Repeat([]byte{9}, 4096), 4<<20)
	must(t, err)
	must(t, f.Truncate(8<<20+123))
	must(t, f.Close())
	// Hard links across directories; a hard-linked fifo.
	must(t, os.WriteFile(p("hl1"), []byte("linked"), 0o640))
	must(t, os.Link(p("hl1"), p("sub/hl2")))
	must(t, os.Link(p("hl1"), p("sub/deeper/hl3")))
	must(t, unix.Mkfifo(p("fifo"), 0o640))
	must(t, os.Link(p("fifo"), p("sub/fifo-link")))
	must(t, unix.Mknod(p("chr"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
	must(t, unix.Mknod(p("blk"), unix.S_IFBLK|0o600, int(unix.Mkdev(7, 200))))
	must(t, unix.Mknod(p("sock"), unix.S_IFSOCK|0o755, 0))
	must(t, os.Lchown(p("chr"), 42, 43))
	for name, target := range map[string]string{
		"sl-rel": "file", "sl-abs": "/etc/passwd", "sl-up": "../..",
		"sl-dangling": "nowhere/x", "sub/sl-dir": "../sub",
	} {
		must(t, os.Symlink(target, p(name)))
	}
	must(t, os.Lchown(p("sl-abs"), 4321, 4322))
	must(t, unix.Lsetxattr(p("sl-rel"), "trusted.on-link", []byte("l"), 0))
	// xattrs of every namespace, and ACLs.
	must(t, unix.Setxattr(p("file"), "user.color", []byte("blue"), 0))
	must(t, unix.Setxattr(p("file"), "trusted.secret", []byte{0, 1, 2}, 0))
	must(t, unix.Setxattr(p("file"), "security.localdisk-test", []byte("s"), 0))
	must(t, unix.Setxattr(p("sub"), "user.dir", []byte(""), 0))
	must(t, unix.Lsetxattr(p("fifo"), "trusted.fifo", []byte("f"), 0))
	must(t, os.WriteFile(p("acl-file"), []byte("acl"), 0o640))
	acl := aclXattr([3]uint32{aclUserObj, 6, aclNoID}, [3]uint32{aclUser, 4, 1500},
		[3]uint32{aclGroupObj, 4, aclNoID}, [3]uint32{aclMask, 4, aclNoID}, [3]uint32{aclOther, 0, aclNoID})
	must(t, unix.Setxattr(p("acl-file"), "system.posix_acl_access", acl, 0))
	must(t, unix.Setxattr(p("sub"), "system.posix_acl_default", acl, 0))
	// Read-only directory and file, a sticky directory.
	must(t, os.WriteFile(p("ro-dir/inner"), []byte("ro"), 0o400))
	must(t, os.Chmod(p("ro-dir"), 0o500))
	must(t, unix.Chmod(p("sticky"), 0o1777))
	must(t, os.WriteFile(p("sub/deeper/x"), []byte("x"), 0o644))
	must(t, os.Chown(root, 1000, 1001))
	must(t, os.Chmod(root, 0o750))
	setOldTimes(t, root)
}

// setOldTimes gives every entry below root (and root) distinct times in
// 2001, deepest first, atime and mtime apart.
func setOldTimes(t testing.TB, root string) {
	t.Helper()
	var paths []string
	must(t, filepath.WalkDir(root, func(p string, _ os.DirEntry, err error) error {
		paths = append(paths, p)
		return err
	}))
	slices.Reverse(paths)
	base := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC).UnixNano()
	for i, p := range paths {
		mt := unix.NsecToTimespec(base + int64(i)*1_000_000_007)
		at := unix.NsecToTimespec(base + int64(i)*1_000_000_007 + 86400e9)
		must(t, unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{at, mt}, unix.AT_SYMLINK_NOFOLLOW))
	}
}

// openDir opens the directory p for Copy.
func openDir(t testing.TB, p string) *os.File {
	t.Helper()
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_DIRECTORY, 0)
	must(t, err)
	t.Cleanup(func() { f.Close() })
	return f
}

// copyPaths runs Copy from the directory src to dst, made here, empty.
func copyPaths(t testing.TB, ctx context.Context, src, dst string, m Method) (Stats, error) {
	t.Helper()
	must(t, os.Mkdir(dst, 0o700))
	return Copy(ctx, openDir(t, src), openDir(t, dst), m)
}

// checkCounts fails t unless got has want's counts (SkippedMounts and
// Bytes aside).
func checkCounts(t *testing.T, got, want Stats) {
	t.Helper()
	got.SkippedMounts, want.SkippedMounts, got.Bytes, want.Bytes = nil, nil, 0, 0
	if !reflectEqual(got, want) {
		t.Errorf("stats: got %+v, want %+v", got, want)
	}
}

func reflectEqual(a, b Stats) bool {
	return a.Files == b.Files && a.Dirs == b.Dirs && a.Symlinks == b.Symlinks &&
		a.Others == b.Others && a.HardLinks == b.HardLinks
}

// blocks is the 512-byte blocks p occupies.
func blocks(t testing.TB, p string) int64 {
	t.Helper()
	var st unix.Stat_t
	must(t, unix.Lstat(p, &st))
	return st.Blocks
}
