package mesos

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/localdisk-csi/localdisk/test/testutil"
)

// mountsBelow lists the mounts at or below dir (one entry per mount).
func mountsBelow(t *testing.T, dir string) []string {
	t.Helper()
	return testutil.Mounts(t, dir)
}

// wantMounts fails the test unless exactly the paths are mounted at or
// below dir, each once.
func wantMounts(t *testing.T, dir string, paths ...string) {
	t.Helper()
	want := slices.Clone(paths)
	slices.Sort(want)
	if got := mountsBelow(t, dir); !slices.Equal(got, want) {
		t.Errorf("mounted below %s: %q, want %q", dir, got, want)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatalf("writing %s: %v", path, err)
	}
}

// wantFile fails the test unless path holds content.
func wantFile(t *testing.T, path, content string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("reading %s: %v", path, err)
	} else if string(data) != content {
		t.Errorf("%s holds %q, want %q", path, data, content)
	}
}

// wantNoEntry fails the test if path exists.
func wantNoEntry(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Lstat(path); err == nil {
		t.Errorf("%s exists, want it gone", path)
	}
}

// wantDir fails the test unless path is a directory.
func wantDir(t *testing.T, path string) {
	t.Helper()
	if fi, err := os.Stat(path); err != nil || !fi.IsDir() {
		t.Errorf("%s is not a directory: %v", path, err)
	}
}

// entries lists the names in dir, sorted.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatalf("listing %s: %v", dir, err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// mountOptions returns the per-mount options of the topmost mount at path.
func mountOptions(t *testing.T, path string) []string {
	t.Helper()
	infos, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter(path))
	if err != nil || len(infos) == 0 {
		t.Fatalf("%s is not mounted (%v)", path, err)
	}
	return strings.Split(infos[len(infos)-1].Options, ",")
}

// fsSize is the size of the filesystem at dir rounded down to whole MiB:
// the capacity of a MOUNT volume on it.
func fsSize(t *testing.T, dir string) int64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatalf("statfs %s: %v", dir, err)
	}
	return int64(st.Blocks) * st.Bsize / mib * mib
}

// tree is a snapshot of the files below some directories: for each path,
// its type, mode, size, modification time and content hash.
type tree map[string]string

func snapshot(t *testing.T, dirs ...string) tree {
	t.Helper()
	out := tree{}
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			fi, err := d.Info()
			if err != nil {
				return err
			}
			desc := fmt.Sprintf("%v %d %d", fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
			if fi.Mode().IsRegular() {
				data, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				desc += fmt.Sprintf(" %x", sha256.Sum256(data))
			}
			out[path] = desc
			return nil
		})
		if err != nil {
			t.Fatalf("walking %s: %v", dir, err)
		}
	}
	return out
}

// diff describes how two snapshots differ, or is empty.
func (a tree) diff(b tree) []string {
	var out []string
	for p, d := range a {
		if e, ok := b[p]; !ok {
			out = append(out, "removed "+p)
		} else if e != d {
			out = append(out, "changed "+p)
		}
	}
	for p := range b {
		if _, ok := a[p]; !ok {
			out = append(out, "added "+p)
		}
	}
	slices.Sort(out)
	return out
}

// ownerOf returns the uid of path.
func ownerOf(t *testing.T, path string) uint32 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return st.Uid
}
