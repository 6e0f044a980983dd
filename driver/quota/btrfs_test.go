package quota

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/localdisk-csi/localdisk/test/testutil"
	"golang.org/x/sys/unix"
)

// loopBtrfs makes a btrfs filesystem on a sparse image, attaches it to a
// loop device and mounts it in a short temporary directory, returning the
// mount point opened. Everything is undone when the test ends, also when it
// fails half-way: each step registers its cleanup before the next one.
func loopBtrfs(t *testing.T) *os.File {
	t.Helper()
	testutil.RequireRoot(t)
	if b, err := os.ReadFile("/proc/filesystems"); err == nil && !strings.Contains(string(b), "btrfs") {
		if err := exec.Command("modprobe", "btrfs").Run(); err != nil {
			t.Skip("the kernel has no btrfs")
		}
	}
	dir := testutil.ShortTempDir(t)
	img, mnt := filepath.Join(dir, "btrfs.img"), filepath.Join(dir, "mnt")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(img)
	if err == nil {
		err = f.Truncate(256 << 20)
		f.Close()
	}
	if err != nil {
		t.Fatal(err)
	}
	tool(t, "mkfs.btrfs", "-q", "-f", img)
	dev := strings.TrimSpace(tool(t, "losetup", "--find", "--show", img))
	t.Cleanup(func() {
		if out, err := exec.Command("losetup", "--detach", dev).CombinedOutput(); err != nil {
			t.Errorf("losetup --detach %s: %v: %s", dev, err, out)
		}
	})
	if err := unix.Mount(dev, mnt, "btrfs", 0, ""); err != nil {
		t.Fatalf("mounting %s at %s: %v", dev, mnt, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(mnt, 0); err != nil {
			t.Errorf("unmounting %s: %v", mnt, err)
		}
	})
	root, err := os.Open(mnt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { root.Close() })
	return root
}

// tool runs a system tool for a test's set-up and returns its output.
func tool(t *testing.T, name string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	path, err := exec.LookPath(name)
	if err != nil {
		path = "/usr/sbin/" + name
	}
	out, err := exec.CommandContext(ctx, path, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s (run hack/install-test-deps.sh)", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// subvolume creates subvolume name in root and returns its ID.
func subvolume(t *testing.T, root *os.File, name string) uint64 {
	t.Helper()
	if err := CreateSubvolume(root, name); err != nil {
		t.Fatal(err)
	}
	sub, err := os.Open(filepath.Join(root.Name(), name))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	if ok, err := IsSubvolume(sub); err != nil || !ok {
		t.Fatalf("IsSubvolume(%s) = %v, %v", sub.Name(), ok, err)
	}
	id, err := SubvolumeID(sub)
	if err != nil || id < btrfsFirstFreeObjectID {
		t.Fatalf("SubvolumeID(%s) = %d, %v", sub.Name(), id, err)
	}
	return id
}

func TestBtrfsQgroupLimit(t *testing.T) {
	root := loopBtrfs(t)
	if on, err := QuotaEnabled(root); err != nil || on {
		t.Fatalf("QuotaEnabled on a new filesystem = %v, %v; want false", on, err)
	}
	id := subvolume(t, root, "early")
	if err := SetQgroupLimit(root, id, miB); !errors.Is(err, ErrNotSupported) {
		t.Errorf("SetQgroupLimit with quotas off = %v, want ErrNotSupported", err)
	}
	for range 2 { // idempotent
		if err := EnableQuota(root); err != nil {
			t.Fatal(err)
		}
	}
	if on, err := QuotaEnabled(root); err != nil || !on {
		t.Fatalf("QuotaEnabled = %v, %v; want true", on, err)
	}

	const limit = 8 * miB
	id1, id2 := subvolume(t, root, "vol1"), subvolume(t, root, "vol2")
	for _, id := range []uint64{id1, id2} {
		if err := SetQgroupLimit(root, id, limit); err != nil {
			t.Fatal(err)
		}
	}
	// Past the limit: EDQUOT.
	data1 := filepath.Join(root.Name(), "vol1", "data")
	n, err := write(data1, 2*limit)
	t.Logf("btrfs: subvolume %d, qgroup limit %d bytes: wrote %d of %d bytes, then: %v", id1, limit, n, 2*limit, err)
	if !errors.Is(err, unix.EDQUOT) || !IsExceeded(err) || n > limit {
		t.Fatalf("want EDQUOT within %d bytes", limit)
	}
	u, err := QgroupUsage(root, id1)
	t.Logf("usage of 0/%d: %+v, %v", id1, u, err)
	if err != nil || u.Bytes < uint64(n) || u.Bytes > limit || u.Limits.Bytes != limit {
		t.Errorf("usage %+v, %v: want at least %d bytes, within the limit of %d", u, err, n, limit)
	}
	// The other subvolume is not starved.
	if m, err := write(filepath.Join(root.Name(), "vol2", "data"), 4*miB); err != nil {
		t.Errorf("vol1 full: writing 4 MiB to vol2: wrote %d, %v", m, err)
	}
	// Raising the limit lets the write succeed.
	if err := SetQgroupLimit(root, id1, 4*limit); err != nil {
		t.Fatal(err)
	}
	if m, err := write(data1, limit); err != nil {
		t.Errorf("after raising the limit to %d: wrote %d of %d: %v", 4*limit, m, limit, err)
	}
	// Clearing it removes the limit.
	if err := SetQgroupLimit(root, id1, 0); err != nil {
		t.Fatal(err)
	}
	if u, err := QgroupUsage(root, id1); err != nil || u.Limits.Bytes != 0 || u.Bytes < uint64(n)+limit {
		t.Errorf("after clearing: %+v, %v; want no limit and at least %d bytes", u, err, uint64(n)+limit)
	}
}

func TestBtrfsUsage(t *testing.T) {
	root := loopBtrfs(t)
	if err := EnableQuota(root); err != nil {
		t.Fatal(err)
	}
	id := subvolume(t, root, "vol")
	if u, err := QgroupUsage(root, id); err != nil || u.Bytes > 64*kiB || u.Limits.Bytes != 0 {
		t.Errorf("usage of an empty subvolume: %+v, %v", u, err)
	}
	for _, name := range []string{"a", "b"} {
		if _, err := write(filepath.Join(root.Name(), "vol", name), miB); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := write(filepath.Join(root.Name(), "outside"), 4*miB); err != nil {
		t.Fatal(err)
	}
	u, err := QgroupUsage(root, id)
	t.Logf("usage of 0/%d with 2 MiB of data: %+v", id, u)
	// Data plus the subvolume's own tree blocks (16 KiB each).
	if err != nil || u.Bytes < 2*miB || u.Bytes > 2*miB+256*kiB {
		t.Errorf("usage %+v, %v; want 2 MiB and a little metadata", u, err)
	}
	if _, err := QgroupUsage(root, 1<<40); !errors.Is(err, ErrNotFound) {
		t.Errorf("usage of a missing qgroup: %v, want ErrNotFound", err)
	}
}

func TestBtrfsDeleteSubvolume(t *testing.T) {
	root := loopBtrfs(t)
	if err := EnableQuota(root); err != nil {
		t.Fatal(err)
	}
	subvolume(t, root, "vol")
	if err := os.MkdirAll(filepath.Join(root.Name(), "vol", "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := write(filepath.Join(root.Name(), "vol", "a", "b", "data"), miB); err != nil {
		t.Fatal(err)
	}
	if err := CreateSubvolume(root, "vol"); !errors.Is(err, os.ErrExist) {
		t.Errorf("creating it twice: %v, want os.ErrExist", err)
	}
	if err := DeleteSubvolume(root, "vol"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(root.Name(), "vol")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after DeleteSubvolume: %v, want it gone", err)
	}
	if err := DeleteSubvolume(root, "vol"); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleting it twice: %v, want ErrNotFound", err)
	}
	subvolume(t, root, "vol") // the name can be used again
	if err := os.Mkdir(filepath.Join(root.Name(), "plain"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := DeleteSubvolume(root, "plain"); err == nil {
		t.Error("DeleteSubvolume of a plain directory succeeded")
	}
}

func TestBtrfsArguments(t *testing.T) {
	for _, name := range []string{"", ".", "..", "a/b", "a\x00", strings.Repeat("x", 256)} {
		if _, err := volArgs(name); !errors.Is(err, ErrInvalid) {
			t.Errorf("volArgs(%q) = %v, want ErrInvalid", name, err)
		}
	}
	dir, err := os.Open("/dev/shm")
	if err != nil {
		t.Fatal(err)
	}
	defer dir.Close()
	if err := CreateSubvolume(dir, "x"); !errors.Is(err, ErrNotSupported) {
		t.Errorf("CreateSubvolume on tmpfs = %v, want ErrNotSupported", err)
	}
	if ok, err := IsSubvolume(dir); ok || err != nil {
		t.Errorf("IsSubvolume on tmpfs = %v, %v", ok, err)
	}
}
