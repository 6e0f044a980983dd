package hostile

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"

	"github.com/localdisk-csi/localdisk/test/testutil"
)

// The pools where a snapshot or a clone copies the volume's tree: ext4
// with `snapshots: copy` (full copies, PATH and ROOT) and XFS with
// reflinks (copies sharing file data); btrfs with quotas makes btrfs
// snapshots, which walk nothing, and is checked for symlinks only.
var (
	ext4Copy   = snapPool{fstype: "ext4", mib: 256, cap: 200}
	xfsReflink = snapPool{fstype: "xfs-reflink", mib: 320, cap: 200}
	btrfsQuota = snapPool{fstype: "btrfs", mib: 320, quota: "required", cap: 200}
)

// copyPools runs f on each pool that copies trees, each in its own plugin.
func copyPools(t *testing.T, f func(e *snapEnv, pool string)) {
	t.Run("ext4-path-copy", func(t *testing.T) { f(newSnapEnv(t, ext4Copy), testutil.PathPool) })
	t.Run("root-copy", func(t *testing.T) { f(newSnapEnv(t, ext4Copy), testutil.RootPool) })
	t.Run("xfs-reflink", func(t *testing.T) { f(newSnapEnv(t, xfsReflink), testutil.PathPool) })
}

// outLinks are symlinks a volume's user plants, by name, to what they
// point to: absolute paths out of the volume, relative ones that climb out
// of it (the volume's directory and a snapshot's are four levels below
// the test directory that holds "outside"), and a dangling one that a
// copy writing through it would create.
func outLinks(outside string) map[string]string {
	return map[string]string{
		"abs-passwd":   "/etc/passwd",
		"abs-secret":   filepath.Join(outside, "secret"),
		"abs-dir":      filepath.Join(outside, "dir"),
		"abs-fifo":     filepath.Join(outside, "fifo"),
		"abs-dangling": filepath.Join(outside, "created-by-the-copy"),
		"rel-up":       "../../..",
		"rel-up4":      "../../../..",
		"rel-secret":   "../../../../outside/secret",
		"rel-fifo":     "../../../../outside/fifo",
		"rel-dangling": "../../../../outside/created-too",
		"sub/rel-dir":  "../../../../../outside/dir",
	}
}

// TestSnapshot_Symlinks: symlinks pointing out of the volume are copied as
// symlinks with the same target text into the snapshot, a clone and a
// restore; nothing outside is read (access times; a fifo outside would
// block a copy that opened it) or written, including by the restore.
func TestSnapshot_Symlinks(t *testing.T) {
	copyPools(t, symlinkCase)
	t.Run("btrfs", func(t *testing.T) { symlinkCase(newSnapEnv(t, btrfsQuota), testutil.PathPool) })
}

func symlinkCase(e *snapEnv, pool string) {
	t := e.t
	src := e.MustCreate("src", 8*testutil.MiB, poolParams(pool)).GetVolumeId()
	v := e.publish(src)
	e.Must(os.MkdirAll(filepath.Join(v.target, "sub"), 0o755), "mkdir")
	e.Must(os.WriteFile(filepath.Join(v.target, "data"), []byte("volume data"), 0o644), "write")
	links := outLinks(e.outside)
	// A neighbour in the pool: the links "../<its ID>" resolve to it from
	// the source's, the clone's and the restore's directories.
	victim := e.MustCreate("victim", testutil.MiB, poolParams(pool)).GetVolumeId()
	victimDir := e.VolumeDir(pool, victim)
	e.Must(os.WriteFile(filepath.Join(victimDir, "v"), []byte("victim"), 0o644), "victim")
	links["rel-sibling"], links["rel-sibling-file"] = "../"+victim, "../"+victim+"/v"
	for name, to := range links {
		e.Must(os.Symlink(to, filepath.Join(v.target, name)), "symlink "+name)
	}
	snap := e.mustSnapshot("snap", src)
	clone := e.mustCreateFrom("clone", pool, fromVolume(src)).GetVolumeId()
	restored := e.mustCreateFrom("restored", pool, fromSnapshot(snap.GetSnapshotId())).GetVolumeId()
	copies := map[string]string{"snapshot": e.snapDir(pool, snap.GetSnapshotId()),
		"clone": e.VolumeDir(pool, clone), "restore": e.VolumeDir(pool, restored)}
	for what, dir := range copies {
		if data, err := os.ReadFile(filepath.Join(dir, "data")); err != nil || string(data) != "volume data" {
			t.Errorf("%s: data %q, %v", what, data, err)
		}
		for name, to := range links {
			p := filepath.Join(dir, name)
			fi, err := os.Lstat(p)
			if err != nil || fi.Mode().Type() != os.ModeSymlink {
				t.Errorf("%s: %s is not a symlink: %v %v", what, name, fi, err)
				continue
			}
			if got, err := os.Readlink(p); err != nil || got != to {
				t.Errorf("%s: %s points to %q (%v), want %q", what, name, got, err, to)
			}
		}
	}
	// The restored volume, published, shows the same links.
	r := e.publish(restored)
	for name, to := range links {
		if got, err := os.Readlink(filepath.Join(r.target, name)); err != nil || got != to {
			t.Errorf("published restore: %s points to %q (%v), want %q", name, got, err, to)
		}
	}
	e.checkOutside()
	if got := top(t, victimDir); !slices.Equal(got, []string{"v"}) {
		t.Errorf("the neighbour volume now holds %q", got)
	}
	if data, err := os.ReadFile(filepath.Join(victimDir, "v")); err != nil || string(data) != "victim" {
		t.Errorf("the neighbour volume's file: %q, %v", data, err)
	}
	e.teardownAll(pool, []vol{v, r}, []string{clone, victim}, []string{snap.GetSnapshotId()})
}

// teardownAll unpublishes and deletes the volumes and the snapshots, and
// checks that the pool and the state dir hold nothing of them.
func (e *snapEnv) teardownAll(pool string, published []vol, others, snaps []string) {
	e.t.Helper()
	for _, v := range published {
		e.Must(e.Unpublish(v.id, v.target), "unpublish "+v.id)
		e.Must(e.Unstage(v.id, v.staging), "unstage "+v.id)
		others = append(others, v.id)
	}
	for _, id := range others {
		e.Must(e.Delete(id), "delete "+id)
	}
	for _, id := range snaps {
		e.Must(e.deleteSnapshot(id), "DeleteSnapshot "+id)
	}
	for k, l := range e.leftovers(pool) {
		if len(l) > 0 {
			e.t.Errorf("after deleting everything: %s %q", k, l)
		}
	}
}

// TestSnapshot_MountsInside: a tmpfs and a bind mount of a directory
// outside, mounted inside a volume through its published target (as a
// pod could) and inside its directory (as a pod with bidirectional
// propagation would make it appear), are not crossed by the snapshot, a
// clone or a restore: each mount point is an empty directory in the copy,
// the mounted content is not copied, and no mount is added or removed.
func TestSnapshot_MountsInside(t *testing.T) {
	copyPools(t, mountsCase)
}

func mountsCase(e *snapEnv, pool string) {
	t := e.t
	if pool == testutil.PathPool {
		// The disk's mount shared, as a host's is: the binds staged and
		// published from it are its peers, and a mount made through the
		// target appears in the volume's directory too (a pod's
		// Bidirectional propagation). A ROOT pool's directory is not a
		// mount: there a mount through the target stays in the pod's view.
		e.Must(unix.Mount("", e.PathDisk, "", unix.MS_SHARED, ""), "make the disk shared")
	}
	src := e.MustCreate("src", 8*testutil.MiB, poolParams(pool)).GetVolumeId()
	v := e.publish(src)
	e.Must(os.WriteFile(filepath.Join(v.target, "data"), []byte("volume data"), 0o644), "write")
	dataDir := e.VolumeDir(pool, src)
	points := map[string]string{ // mount point in the volume -> its path to mount at
		"tm": filepath.Join(v.target, "tm"), "bind": filepath.Join(v.target, "bind"),
		"dtm": filepath.Join(dataDir, "dtm"), "dbind": filepath.Join(dataDir, "dbind")}
	for _, name := range []string{"tm", "bind", "dtm", "dbind"} {
		p := points[name]
		e.Must(os.Mkdir(p, 0o700), "mkdir "+name)
		// Each mount point holds a file of its own, hidden by the mount.
		e.Must(os.WriteFile(filepath.Join(p, "hidden"), []byte("under the mount"), 0o600), "hidden")
		if name == "tm" || name == "dtm" {
			e.Must(unix.Mount("tmpfs", p, "tmpfs", 0, "size=1m"), "tmpfs at "+name)
			e.Must(os.WriteFile(filepath.Join(p, "secret"), []byte("in the tmpfs"), 0o600), "tmpfs file")
		} else {
			e.Must(unix.Mount(filepath.Join(e.outside, "dir"), p, "", unix.MS_BIND, ""), "bind at "+name)
		}
		t.Cleanup(func() { unix.Unmount(p, unix.MNT_DETACH) })
	}
	// What the copy sees: the mounts in the volume's own directory. A
	// mount point there must become an empty directory; a mount only in
	// the pod's view is not in the volume, whose directory (with the file
	// the mount hides there) is copied as it is.
	inVolume := map[string]bool{}
	for _, m := range testutil.Mounts(t, dataDir) {
		inVolume[filepath.Base(m)] = true
	}
	want := 4
	if pool == testutil.RootPool {
		want = 2 // dtm and dbind
	}
	if len(inVolume) != want {
		t.Fatalf("mounts in the volume's directory: %v; want %d", inVolume, want)
	}
	mounts := testutil.Mounts(t, e.Dir)
	snap := e.mustSnapshot("snap", src)
	clone := e.mustCreateFrom("clone", pool, fromVolume(src)).GetVolumeId()
	restored := e.mustCreateFrom("restored", pool, fromSnapshot(snap.GetSnapshotId())).GetVolumeId()
	if got := testutil.Mounts(t, e.Dir); !slices.Equal(got, mounts) {
		t.Errorf("mounts changed by the copies:\n got %q\nwant %q", got, mounts)
	}
	e.checkOutside() // before this test lists the bound directory
	for name, p := range points {
		want := []string{"secret"}
		if name == "bind" || name == "dbind" {
			want = []string{"keep"}
		}
		if got := top(t, p); !slices.Equal(got, want) {
			t.Errorf("the mount at %s now holds %q, want %q", name, got, want)
		}
	}
	e.stamps = e.stampAll() // listing the bound directory read it
	copies := map[string]string{"snapshot": e.snapDir(pool, snap.GetSnapshotId()),
		"clone": e.VolumeDir(pool, clone), "restore": e.VolumeDir(pool, restored)}
	for what, dir := range copies {
		if data, err := os.ReadFile(filepath.Join(dir, "data")); err != nil || string(data) != "volume data" {
			t.Errorf("%s: data %q, %v", what, data, err)
		}
		if got := testutil.Mounts(t, dir); len(got) != 0 {
			t.Errorf("%s: mounts inside: %q", what, got)
		}
		for name := range points {
			p := filepath.Join(dir, name)
			fi, err := os.Lstat(p)
			if err != nil || !fi.IsDir() {
				t.Errorf("%s: mount point %s is not a directory: %v %v", what, name, fi, err)
				continue
			}
			want := []string{"hidden"}
			if inVolume[name] {
				want = nil
			}
			if got := top(t, p); !slices.Equal(got, want) {
				t.Errorf("%s: mount point %s holds %q, want %q (crossed a mount, or copied what it hides)", what, name, got, want)
			}
		}
	}
	for _, name := range []string{"tm", "bind", "dtm", "dbind"} {
		e.Must(unix.Unmount(points[name], 0), "unmount "+name)
	}
	e.teardownAll(pool, []vol{v}, []string{clone, restored}, []string{snap.GetSnapshotId()})
}

// depth is the depth of the deep trees.
const depth = 10000

// TestSnapshot_DeepTree: a tree 10,000 levels deep (far past PATH_MAX)
// is snapshotted, cloned and restored with its depth and the file at its
// bottom; deleting everything leaves nothing.
func TestSnapshot_DeepTree(t *testing.T) {
	t.Run("ext4-path-copy", func(t *testing.T) { deepCase(newSnapEnv(t, ext4Copy), testutil.PathPool) })
	t.Run("xfs-reflink", func(t *testing.T) { deepCase(newSnapEnv(t, xfsReflink), testutil.PathPool) })
}

func deepCase(e *snapEnv, pool string) {
	t := e.t
	src := e.MustCreate("src", 8*testutil.MiB, poolParams(pool)).GetVolumeId()
	e.Must(plantDeep(e.VolumeDir(pool, src), depth), "planting the deep tree")
	snap := e.mustSnapshot("snap", src)
	clone := e.mustCreateFrom("clone", pool, fromVolume(src)).GetVolumeId()
	restored := e.mustCreateFrom("restored", pool, fromSnapshot(snap.GetSnapshotId())).GetVolumeId()
	for what, dir := range map[string]string{"snapshot": e.snapDir(pool, snap.GetSnapshotId()),
		"clone": e.VolumeDir(pool, clone), "restore": e.VolumeDir(pool, restored)} {
		n, bottom, err := measureDeep(dir)
		if err != nil || n != depth || bottom != "bottom" {
			t.Errorf("%s: %d levels, bottom %q, %v; want %d levels and the bottom file", what, n, bottom, err, depth)
		}
	}
	e.teardownAll(pool, nil, []string{src, clone, restored}, []string{snap.GetSnapshotId()})
}

// plantDeep makes n nested directories "d" below dir, descriptor by
// descriptor, and a file "f" holding "bottom" in the deepest.
func plantDeep(dir string, n int) error {
	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	for range n {
		if err := unix.Mkdirat(fd, "d", 0o755); err != nil {
			unix.Close(fd)
			return err
		}
		next, err := unix.Openat(fd, "d", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		if err != nil {
			return err
		}
		fd = next
	}
	defer unix.Close(fd)
	f, err := unix.Openat(fd, "f", unix.O_CREAT|unix.O_WRONLY|unix.O_EXCL|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return err
	}
	defer unix.Close(f)
	_, err = unix.Write(f, []byte("bottom"))
	return err
}

// measureDeep follows the "d" directories below dir and returns how many
// there are and what the deepest one's "f" holds.
func measureDeep(dir string) (int, string, error) {
	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, "", err
	}
	n := 0
	for {
		next, err := unix.Openat(fd, "d", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			break
		}
		unix.Close(fd)
		fd, n = next, n+1
	}
	defer unix.Close(fd)
	f, err := unix.Openat(fd, "f", unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return n, "", err
	}
	defer unix.Close(f)
	buf := make([]byte, 64)
	m, err := unix.Read(f, buf)
	return n, string(bytes.TrimSpace(buf[:max(m, 0)])), err
}

// TestSnapshot_DeepTreeNoRoom: on an ext4 disk with inodes for the source's
// 10,000-level tree and one copy of it (96 MiB: 24,576 inodes), the
// snapshot succeeds and a restore and a clone run out of inodes thousands
// of levels down: RESOURCE_EXHAUSTED, and the half-made tree, deeper than
// PATH_MAX, is removed with everything else the restore made.
func TestSnapshot_DeepTreeNoRoom(t *testing.T) {
	e := newSnapEnv(t, snapPool{fstype: "ext4", mib: 96, cap: 80})
	pool := testutil.PathPool
	src := e.MustCreate("src", 8*testutil.MiB, poolParams(pool)).GetVolumeId()
	e.Must(plantDeep(e.VolumeDir(pool, src), depth), "planting the deep tree")
	snap := e.mustSnapshot("snap", src)
	e.refusedCleanly("restore of a deep tree out of inodes", "restore", pool, nil,
		fromSnapshot(snap.GetSnapshotId()), codes.ResourceExhausted)
	e.refusedCleanly("clone of a deep tree out of inodes", "clone", pool, nil, fromVolume(src), codes.ResourceExhausted)
	if n, _, err := measureDeep(e.snapDir(pool, snap.GetSnapshotId())); err != nil || n != depth {
		t.Errorf("the snapshot after the failed restores: %d levels, %v", n, err)
	}
	e.teardownAll(pool, nil, []string{src}, []string{snap.GetSnapshotId()})
}
