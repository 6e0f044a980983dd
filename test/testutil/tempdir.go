package testutil

import (
	"os"
	"testing"
)

// ShortTempDir creates a directory with a short absolute path, such as
// /tmp/ld123456789, and returns it with symlinks resolved. Use it rather
// than t.TempDir for anything that holds a unix socket, whose path is
// limited to about 108 bytes, and for anything mounted, since it is
// cleaned up with mounts in mind.
//
// When the test ends, the directory is removed. Anything still mounted
// below it by then is a bug (each mount should have been undone by the
// code or helper that made it): each such mount is reported as a test
// error, detached with umount2(MNT_DETACH), deepest first, and only then is
// the directory removed, so that the removal never reaches into a mounted
// filesystem. If a mount cannot be detached, the directory is left behind.
func ShortTempDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("/tmp", "ld")
	if err != nil {
		t.Fatalf("creating a temporary directory: %v", err)
	}
	if dir, err = canonical(dir); err != nil {
		t.Fatalf("resolving %s: %v", dir, err)
	}
	t.Cleanup(func() { removeTempDir(t, dir) })
	return dir
}

// removeTempDir detaches what is still mounted below dir, reporting each
// mount as an error of t, and then removes dir.
func removeTempDir(t testing.TB, dir string) {
	detached, err := DetachMounts(dir)
	for _, mp := range detached {
		t.Errorf("%s was still mounted at the end of the test; detached it", mp)
	}
	if err != nil {
		t.Errorf("not removing %s: %v", dir, err)
		return
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Errorf("removing %s: %v", dir, err)
	}
}
