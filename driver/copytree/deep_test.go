package copytree

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/localdisk-csi/localdisk/test/testutil"
	"golang.org/x/sys/unix"
)

// TestDeepTree copies a chain of 10,000 directories (too deep for any
// path: PATH_MAX is 4096) with a file at the bottom, under a descriptor
// limit of 300: the copy needs a bounded number of descriptors, not one
// or two per level. Each level's mode, owner and mtime are checked.
func TestDeepTree(t *testing.T) {
	testutil.RequireRoot(t)
	const depth = 10000
	dir := testutil.ShortTempDir(t)
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	must(t, os.Mkdir(src, 0o755))
	buildChain(t, src, depth)
	must(t, os.Mkdir(dst, 0o700))
	sf, df := openDir(t, src), openDir(t, dst)
	before := openFds(t)

	var lim syscall.Rlimit
	must(t, syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim))
	low := lim
	low.Cur = 300
	must(t, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low))
	start := time.Now()
	st, err := Copy(context.Background(), sf, df, Full)
	took := time.Since(start)
	must(t, syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim))
	if err != nil {
		t.Fatalf("Copy of %d levels with at most %d descriptors: %v", depth, low.Cur, err)
	}
	if after := openFds(t); after != before {
		t.Errorf("%d descriptors open after the copy, %d before", after, before)
	}
	if st.Dirs != depth || st.Files != 1 {
		t.Errorf("stats %+v, want %d dirs and 1 file", st, depth)
	}
	t.Logf("copied %d levels in %v", depth, took)
	checkChain(t, src, dst, depth)
}

// buildChain makes depth nested directories "d" in root, each with its
// own mode, the last holding the file "leaf", through descriptors.
func buildChain(t *testing.T, root string, depth int) {
	t.Helper()
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	must(t, err)
	for i := range depth {
		must(t, unix.Mkdirat(fd, "d", 0o700))
		next, err := unix.Openat(fd, "d", unix.O_RDONLY|unix.O_DIRECTORY, 0)
		must(t, err)
		must(t, unix.Fchmod(next, 0o700|uint32(i%64)))
		must(t, unix.Fchown(next, i%7, i%5))
		unix.Close(fd)
		fd = next
	}
	leaf, err := unix.Openat(fd, "leaf", unix.O_CREAT|unix.O_WRONLY, 0o644)
	must(t, err)
	_, err = unix.Write(leaf, []byte("bottom"))
	must(t, err)
	unix.Close(leaf)
	unix.Close(fd)
}

// checkChain walks the chains of src and dst in step, comparing each
// level's entries, mode, owner and mtime, and the leaf's content.
func checkChain(t *testing.T, src, dst string, depth int) {
	t.Helper()
	sfd, err := unix.Open(src, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	must(t, err)
	dfd, err := unix.Open(dst, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	must(t, err)
	defer func() { unix.Close(sfd); unix.Close(dfd) }()
	for i := 0; i <= depth; i++ {
		var s, d unix.Stat_t
		must(t, unix.Fstat(sfd, &s))
		must(t, unix.Fstat(dfd, &d))
		if s.Mode != d.Mode || s.Uid != d.Uid || s.Gid != d.Gid || s.Mtim != d.Mtim {
			t.Fatalf("level %d: copy has mode %o, owner %d:%d, mtime %v; source %o, %d:%d, %v",
				i, d.Mode, d.Uid, d.Gid, d.Mtim, s.Mode, s.Uid, s.Gid, s.Mtim)
		}
		want := "d"
		if i == depth {
			want = "leaf"
		}
		if names := fdNames(t, dfd); len(names) != 1 || names[0] != want {
			t.Fatalf("level %d of the copy holds %v, want [%s]", i, names, want)
		}
		if i == depth {
			break
		}
		for _, fd := range []*int{&sfd, &dfd} {
			next, err := unix.Openat(*fd, "d", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
			must(t, err)
			unix.Close(*fd)
			*fd = next
		}
	}
	leaf, err := unix.Openat(dfd, "leaf", unix.O_RDONLY|unix.O_NOFOLLOW, 0)
	must(t, err)
	defer unix.Close(leaf)
	buf := make([]byte, 64)
	n, _ := unix.Read(leaf, buf)
	if string(buf[:n]) != "bottom" {
		t.Errorf("the leaf of the copy holds %q", buf[:n])
	}
}

func fdNames(t *testing.T, fd int) []string {
	t.Helper()
	buf := make([]byte, 4096)
	var names []string
	_, err := unix.Seek(fd, 0, 0)
	must(t, err)
	for {
		n, err := unix.Getdents(fd, buf)
		must(t, err)
		if n == 0 {
			return names
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
}

func openFds(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	must(t, err)
	return len(ents)
}

// TestSmallWindow copies a branching tree 40 levels deep with a window of
// 3 open directories and 2 anchors every 4 levels, so that directories are
// evicted, reopened from anchors and from the root, and hard links reach
// back through closed directories; the trees compare equal and no
// descriptor leaks.
func TestSmallWindow(t *testing.T) {
	testutil.RequireRoot(t)
	saved := [3]int{maxOpen, anchorEvery, maxAnchors}
	maxOpen, anchorEvery, maxAnchors = 3, 4, 2
	t.Cleanup(func() { maxOpen, anchorEvery, maxAnchors = saved[0], saved[1], saved[2] })
	dir := testutil.ShortTempDir(t)
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	p := src
	must(t, os.Mkdir(p, 0o755))
	for i := range 40 {
		must(t, os.MkdirAll(filepath.Join(p, "b", "h"), 0o750))
		must(t, os.WriteFile(filepath.Join(p, "f"), []byte(fmt.Sprint(i)), 0o644))
		must(t, os.WriteFile(filepath.Join(p, "b", "h", "g"), []byte(fmt.Sprint(-i)), 0o600))
		if i%9 == 5 {
			must(t, os.Link(filepath.Join(src, "f"), filepath.Join(p, "link-to-top")))
			must(t, os.Link(filepath.Join(src, "b", "h", "g"), filepath.Join(p, "b", "link-to-top-g")))
		}
		must(t, os.Symlink(strings.Repeat("../", i+1), filepath.Join(p, "up")))
		p = filepath.Join(p, "d")
		must(t, os.Mkdir(p, 0o711))
	}
	setOldTimes(t, src)
	before := openFds(t)
	st, err := copyPaths(t, context.Background(), src, dst, Full)
	if err != nil {
		t.Fatalf("Copy: %v", err)
	}
	compareTrees(t, src, dst, nil)
	if after := openFds(t); after != before+2 { // copyPaths's two directories
		t.Errorf("%d descriptors open after the copy, %d before (+2 expected)", after, before)
	}
	if st.HardLinks != 8 || st.Dirs != 40*3 {
		t.Errorf("stats %+v, want 8 hard links and %d dirs", st, 40*3)
	}
}

// TestWideDirectory copies a directory of 3,000 entries with long names,
// more than one getdents batch.
func TestWideDirectory(t *testing.T) {
	testutil.RequireRoot(t)
	dir := testutil.ShortTempDir(t)
	src, dst := filepath.Join(dir, "src"), filepath.Join(dir, "dst")
	must(t, os.Mkdir(src, 0o755))
	var want []string
	for i := range 3000 {
		name := fmt.Sprintf("entry-with-a-rather-long-name-%06d", i)
		want = append(want, name)
		must(t, os.WriteFile(filepath.Join(src, name), nil, 0o644))
	}
	st, err := copyPaths(t, context.Background(), src, dst, Full)
	if err != nil {
		t.Fatalf("Copy: %v", err)
	}
	got := readDirNames(t, dst)
	slices.Sort(got)
	if !slices.Equal(got, want) || st.Files != 3000 {
		t.Errorf("copied %d entries (%d in Stats), want 3000", len(got), st.Files)
	}
}
