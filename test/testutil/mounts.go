package testutil

import (
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// Mounts returns the mount points at or below the directory under, read
// from /proc/self/mountinfo and sorted. There is one entry per mount, so a
// path mounted twice (a mount stacked on another) appears twice: compare
// the result before and after an operation to check that it is idempotent.
func Mounts(t testing.TB, under string) []string {
	t.Helper()
	mps, err := ListMounts(under)
	if err != nil {
		t.Fatalf("reading the mount table: %v", err)
	}
	return mps
}

// ListMounts is Mounts for code that has no testing.TB (such as a Ginkgo
// callback): it returns the error instead of failing the test.
func ListMounts(under string) ([]string, error) {
	prefix, err := canonical(under)
	if err != nil {
		return nil, err
	}
	infos, err := mountinfo.GetMounts(mountinfo.PrefixFilter(prefix))
	if err != nil {
		return nil, err
	}
	mps := make([]string, 0, len(infos))
	for _, info := range infos {
		mps = append(mps, info.Mountpoint)
	}
	sort.Strings(mps)
	return mps, nil
}

// canonical returns the absolute, cleaned, symlink-free form of path, as
// mount points appear in /proc/self/mountinfo. A path that does not exist
// is only made absolute and cleaned.
func canonical(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	resolved, err := filepath.EvalSymlinks(abs)
	if err != nil {
		// A missing path has no symlinks to resolve.
		return abs, nil
	}
	return resolved, nil
}

// depth is the number of path elements of a clean absolute path.
func depth(path string) int {
	return strings.Count(path, "/")
}

// DetachMounts is the last-resort cleanup of mounts that a test left
// behind: it lazily unmounts (umount2 with MNT_DETACH) everything mounted
// at or below the directory under, deepest first, and returns the mount
// points it found, one entry per mount. It returns an error if something
// is still mounted there afterwards.
func DetachMounts(under string) (detached []string, err error) {
	// A mount point can carry several stacked mounts; each umount2 removes
	// the top one, so go round until nothing is left.
	for range 10 {
		mps, err := ListMounts(under)
		if err != nil {
			return detached, err
		}
		if len(mps) == 0 {
			return detached, nil
		}
		sort.SliceStable(mps, func(i, j int) bool { return depth(mps[i]) > depth(mps[j]) })
		for _, mp := range mps {
			detached = append(detached, mp)
			err := unix.Unmount(mp, unix.MNT_DETACH)
			if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
				return detached, fmt.Errorf("detaching %s: %w", mp, err)
			}
		}
	}
	mps, err := ListMounts(under)
	if err != nil {
		return detached, err
	}
	if len(mps) > 0 {
		return detached, fmt.Errorf("still mounted: %s", strings.Join(mps, ", "))
	}
	return detached, nil
}

// SelfBind makes the existing directory dir a mount of its own (a bind
// onto itself) with the given propagation (unix.MS_SHARED, MS_PRIVATE,
// ...), as a kubelet directory is on a host; it is unmounted when the test
// ends.
func SelfBind(t testing.TB, dir string, propagation uintptr) {
	t.Helper()
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("bind %s onto itself: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(dir, 0); err != nil {
			t.Errorf("unmount %s: %v", dir, err)
		}
	})
	if err := unix.Mount("", dir, "", propagation, ""); err != nil {
		t.Fatalf("propagation of %s: %v", dir, err)
	}
}
