package copytree

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// entryFacts is what the tree comparison checks of one entry.
type entryFacts struct {
	Mode         uint32 // type and permission bits
	UID, GID     uint32
	Size         int64 // regular files and symlinks
	Atime, Mtime int64 // ns
	Rdev         uint64
	Target       string
	Xattrs       string // sorted name=value list
	Hash         string
	ino          uint64
}

// treeFacts lstat's every entry below root (root included, as "."), never
// following a symlink, and then hashes the regular files; the access times
// are read before anything is read. skip are relative paths not descended
// into (mount points).
func treeFacts(t *testing.T, root string, skip []string) (map[string]*entryFacts, map[string][]string) {
	t.Helper()
	facts := map[string]*entryFacts{}
	byIno := map[uint64][]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		e := &entryFacts{
			Mode: st.Mode, UID: st.Uid, GID: st.Gid,
			Atime: st.Atim.Nano(), Mtime: st.Mtim.Nano(), ino: st.Ino,
		}
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFREG, unix.S_IFLNK:
			e.Size = st.Size
		case unix.S_IFCHR, unix.S_IFBLK:
			e.Rdev = st.Rdev
		}
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			if e.Target, err = os.Readlink(p); err != nil {
				return err
			}
		}
		if e.Xattrs, err = xattrList(p); err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		facts[rel] = e
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			byIno[st.Ino] = append(byIno[st.Ino], rel)
		}
		if d.IsDir() && slices.Contains(skip, rel) {
			return fs.SkipDir
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walking %s: %v", root, err)
	}
	links := map[string][]string{}
	for rel, e := range facts {
		if e.Mode&unix.S_IFMT == unix.S_IFREG {
			if e.Hash, err = hashFile(filepath.Join(root, rel)); err != nil {
				t.Fatalf("hashing: %v", err)
			}
		}
		if e.Mode&unix.S_IFMT != unix.S_IFDIR {
			group := slices.Clone(byIno[e.ino])
			slices.Sort(group)
			links[rel] = group
		}
	}
	return facts, links
}

func xattrList(p string) (string, error) {
	buf := make([]byte, 64<<10)
	n, err := unix.Llistxattr(p, buf)
	if err == unix.EOPNOTSUPP {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	var out []string
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name == "" {
			continue
		}
		val := make([]byte, 64<<10)
		m, err := unix.Lgetxattr(p, name, val)
		if err != nil {
			return "", fmt.Errorf("xattr %s: %w", name, err)
		}
		out = append(out, name+"="+hex.EncodeToString(val[:m]))
	}
	slices.Sort(out)
	return strings.Join(out, " "), nil
}

func hashFile(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// compareTrees fails t unless dst is a faithful copy of src: the same
// entries with the same type, mode, owner, size, times, device numbers,
// symlink targets, xattrs, content and hard-link structure. The mounts
// skipped in src must be empty in dst. It returns the number of entries.
func compareTrees(t *testing.T, src, dst string, skipped []string) int {
	t.Helper()
	sf, sl := treeFacts(t, src, skipped)
	df, dl := treeFacts(t, dst, nil)
	for _, m := range skipped {
		delete(sf, m) // compared by the test itself
		delete(df, m)
	}
	for rel, s := range sf {
		d, ok := df[rel]
		if !ok {
			t.Errorf("%s: missing in the copy", rel)
			continue
		}
		if !sameFacts(s, d) {
			t.Errorf("%s: copy differs:\n src %+v\n dst %+v", rel, *s, *d)
		}
		if !slices.Equal(sl[rel], dl[rel]) {
			t.Errorf("%s: hard links differ: src %v, dst %v", rel, sl[rel], dl[rel])
		}
	}
	for rel := range df {
		if _, ok := sf[rel]; !ok {
			t.Errorf("%s: in the copy only", rel)
		}
	}
	return len(sf)
}

func sameFacts(a, b *entryFacts) bool {
	x, y := *a, *b
	x.ino, y.ino = 0, 0
	if x.Mode&unix.S_IFMT == unix.S_IFLNK {
		// readlink moves a symlink's atime, the copy's readlink too.
		x.Atime, y.Atime = 0, 0
	}
	return x == y
}
