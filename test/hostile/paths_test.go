package hostile

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"

	"github.com/localdisk-csi/localdisk/test/testutil"
)

// TestPaths_Malformed: relative, NUL-bearing, huge and root staging and
// target paths are INVALID_ARGUMENT, and nothing is created for them: not
// a parent directory relative to the plugin's working directory, nor a tree
// under /. A publish of an unknown volume creates nothing either.
func TestPaths_Malformed(t *testing.T) {
	e := newEnv(t)
	v := e.published("v", "root")
	mounts := testutil.Mounts(t, e.Dir)
	cwd, err := os.Getwd()
	e.Must(err, "getwd")
	// What a plugin that creates directories for malformed paths would
	// create; removed when the test ends, so no run leaves them behind.
	litter := []string{filepath.Join(cwd, "ldh-rel"), filepath.Join(cwd, "..", "ldh-rel"),
		filepath.Join(cwd, "ldh-t"), "/ldhz", filepath.Join(e.CODir, "nul"), filepath.Join(e.CODir, "ghost")}
	for _, l := range litter {
		if _, err := os.Lstat(l); err == nil {
			t.Fatalf("%s exists before the test", l)
		}
		t.Cleanup(func() { os.RemoveAll(l) })
	}
	for _, p := range []string{"ldh-rel/target", "../ldh-rel/target", "./ldh-t", "ldh-t", "/", "//", "/..",
		filepath.Join(e.CODir, "nul\x00/target"), filepath.Join(e.CODir, "nul\x00"),
		"/" + strings.Repeat("x", 1<<20), filepath.Join(e.CODir, strings.Repeat("y", 300), "target"),
		strings.Repeat("/ldhz", 1500)} {
		name := short(p)
		wantCode(t, e.Publish(v.id, v.staging, p, false), "publish to "+name, codes.InvalidArgument)
		wantCode(t, e.Stage(v.id, p), "stage at "+name, codes.InvalidArgument)
		wantCode(t, e.Publish(v.id, p, filepath.Join(e.CODir, "t"), false), "publish from staging "+name,
			codes.InvalidArgument, codes.FailedPrecondition)
		wantCode(t, e.Unpublish(v.id, p), "unpublish of "+name, codes.InvalidArgument, codes.OK)
		wantCode(t, e.Unstage(v.id, p), "unstage of "+name, codes.InvalidArgument, codes.OK)
	}
	wantCode(t, e.Publish("no-such-volume", v.staging, filepath.Join(e.CODir, "ghost", "a", "target"), false),
		"publish of an unknown volume", codes.NotFound)
	for _, l := range litter {
		if _, err := os.Lstat(l); err == nil {
			t.Errorf("%s was created for a request that failed", l)
		}
	}
	if got := testutil.Mounts(t, e.Dir); !slices.Equal(got, mounts) {
		t.Errorf("mounts changed: %q, want %q", got, mounts)
	}
	e.teardown(v)
}

// TestPaths_Odd: paths with spaces, newlines, tabs, backslashes and octal
// escapes are served (mountinfo escapes them); repeating the publish stacks
// nothing and unpublish removes exactly that mount. A ROOT volume is staged
// without a mount: its staging record keeps the odd staging path as it is,
// also across a restart of the plugin (publish finds it staged there, and
// DeleteVolume refuses it while that path exists).
func TestPaths_Odd(t *testing.T) {
	e := newEnv(t)
	for i, name := range []string{"sp ace", "new\nline", "tab\there", `back\slash`, `oct\040al`, "dé\u202ejà", "star*?[", "\\"} {
		v := e.MustCreate("odd"+strconv.Itoa(i), testutil.MiB, map[string]string{"pool": testutil.RootPool}).GetVolumeId()
		base := filepath.Join(e.CODir, name)
		staging, target := filepath.Join(base, "st "+name), filepath.Join(base, name)
		e.Must(os.MkdirAll(staging, 0o750), "mkdir")
		e.Must(e.Stage(v, staging), "stage at "+short(staging))
		e.P.Restart() // the record is read back
		for range 2 {
			e.Must(e.Stage(v, staging), "stage at "+short(staging))
			e.Must(e.Publish(v, staging, target, false), "publish to "+short(target))
		}
		if got := testutil.Mounts(t, base); !slices.Equal(got, []string{target}) {
			t.Errorf("%s: mounts %q, want one at the target (and none at the staging path)", short(name), got)
		}
		wantCode(t, e.Delete(v), "delete of a volume staged at "+short(staging), codes.FailedPrecondition)
		e.Must(os.WriteFile(filepath.Join(target, "f"), []byte(name), 0o600), "write")
		if data, err := os.ReadFile(filepath.Join(e.dataDir("root", v), "f")); err != nil || string(data) != name {
			t.Errorf("%s: write through the target did not land in the volume: %q %v", short(name), data, err)
		}
		e.teardown(vol{v, staging, target})
		if got := testutil.Mounts(t, base); len(got) != 0 {
			t.Errorf("%s: left mounted: %q", short(name), got)
		}
	}
	e.CheckConverged()
}

// TestPaths_NotDirectories: a target or staging path that is a file, a fifo
// or a symlink (to a directory outside) is FAILED_PRECONDITION; nothing is
// mounted through it and unpublish removes only the link.
func TestPaths_NotDirectories(t *testing.T) {
	e := newEnv(t)
	v := e.published("v", "path")
	mounts := testutil.Mounts(t, e.Dir)
	dir := filepath.Join(e.CODir, "odd")
	e.Must(os.MkdirAll(dir, 0o750), "mkdir")
	file, fifo, link, flink := filepath.Join(dir, "file"), filepath.Join(dir, "fifo"), filepath.Join(dir, "link"), filepath.Join(dir, "flink")
	e.Must(os.WriteFile(file, []byte("precious"), 0o644), "file")
	e.Must(unix.Mkfifo(fifo, 0o644), "fifo")
	e.Must(os.Symlink(e.outside, link), "symlink")
	e.Must(os.Symlink(filepath.Join(e.outside, "keep"), flink), "symlink")
	for _, p := range []string{file, fifo, link, flink} {
		wantCode(t, e.Publish(v.id, v.staging, p, false), "publish to "+p, codes.FailedPrecondition, codes.InvalidArgument)
		wantCode(t, e.Stage(v.id, p), "stage at "+p, codes.FailedPrecondition, codes.InvalidArgument)
	}
	if got := testutil.Mounts(t, e.Dir); !slices.Equal(got, mounts) {
		t.Errorf("mounts changed: %q, want %q", got, mounts)
	}
	e.Must(e.Unpublish(v.id, link), "unpublish of a symlink")
	if _, err := os.Lstat(link); err == nil {
		t.Log("unpublish kept the symlink (allowed)")
	}
	if data, err := os.ReadFile(file); err != nil || string(data) != "precious" {
		t.Errorf("a file given as target changed: %q %v", data, err)
	}
	// Unpublish of a target that is a regular file with data (no mount,
	// not a file the plugin made for a block volume) deletes no data.
	err := e.Unpublish(v.id, file)
	if data, rerr := os.ReadFile(file); rerr != nil || string(data) != "precious" {
		t.Errorf("DATA LOSS: NodeUnpublishVolume (%v) removed a regular file holding data at the target: %q %v", err, data, rerr)
	}
	e.teardown(v)
}

// TestPaths_SymlinkedParents: a CO path whose parent is a symlink within
// the CO's tree is served at the resolved place, and unpublish through the
// same symlinked path removes it.
func TestPaths_SymlinkedParents(t *testing.T) {
	e := newEnv(t)
	v := e.published("v", "root")
	real := filepath.Join(e.CODir, "real")
	e.Must(os.MkdirAll(real, 0o750), "mkdir")
	e.Must(os.Symlink(real, filepath.Join(e.CODir, "via")), "symlink")
	target := filepath.Join(e.CODir, "via", "target")
	for range 2 {
		e.Must(e.Publish(v.id, v.staging, target, false), "publish through a symlinked parent")
	}
	if got := testutil.Mounts(t, real); !slices.Equal(got, []string{filepath.Join(real, "target")}) {
		t.Errorf("mounts under the symlink's target: %q", got)
	}
	e.Must(e.Unpublish(v.id, target), "unpublish through the symlinked parent")
	if got := testutil.Mounts(t, real); len(got) != 0 {
		t.Errorf("left mounted: %q", got)
	}
	e.teardown(v)
}
