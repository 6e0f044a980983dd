package quota

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"unsafe"
)

func TestSnapshotArgsSize(t *testing.T) {
	if n := unsafe.Sizeof(btrfsVolArgsV2{}); n != 4096 {
		t.Fatalf("sizeof(struct btrfs_ioctl_vol_args_v2) = %d, want 4096", n)
	}
}

// TestBtrfsSnapshot takes a read-only snapshot of a subvolume with data,
// then a writable snapshot of that, and checks each holds the data as it
// was, that the read-only one refuses writes, that the source's later
// changes reach neither, and that both are deleted like subvolumes.
func TestBtrfsSnapshot(t *testing.T) {
	root := loopBtrfs(t)
	if err := EnableQuota(root); err != nil {
		t.Fatal(err)
	}
	subvolume(t, root, "vol")
	data := bytes.Repeat([]byte("snapshot"), 1<<16)
	file := func(parts ...string) string { return filepath.Join(append([]string{root.Name()}, parts...)...) }
	if err := os.WriteFile(file("vol", "f"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(file("snaps"), 0o700); err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(file("vol"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	snaps, err := os.Open(file("snaps"))
	if err != nil {
		t.Fatal(err)
	}
	defer snaps.Close()
	if err := Snapshot(src, snaps, "s1", true); err != nil {
		t.Fatal(err)
	}
	if err := Snapshot(src, snaps, "s1", true); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second Snapshot of the same name = %v, want ErrExist", err)
	}
	if err := os.WriteFile(file("vol", "f"), []byte("changed"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(file("snaps", "s1", "f")); err != nil || !bytes.Equal(got, data) {
		t.Errorf("read-only snapshot holds %d bytes (%v), want the %d bytes before the change", len(got), err, len(data))
	}
	if err := os.WriteFile(file("snaps", "s1", "g"), nil, 0o600); err == nil {
		t.Error("a read-only snapshot took a new file")
	}
	s1, err := os.Open(file("snaps", "s1"))
	if err != nil {
		t.Fatal(err)
	}
	defer s1.Close()
	if err := Snapshot(s1, root, "restored", false); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(file("restored", "f")); err != nil || !bytes.Equal(got, data) {
		t.Errorf("writable snapshot holds %d bytes (%v), want %d", len(got), err, len(data))
	}
	if err := os.WriteFile(file("restored", "g"), []byte("new"), 0o600); err != nil {
		t.Errorf("writable snapshot refused a write: %v", err)
	}
	restored, err := os.Open(file("restored"))
	if err != nil {
		t.Fatal(err)
	}
	id, err := SubvolumeID(restored)
	restored.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := SetQgroupLimit(root, id, 64*miB); err != nil {
		t.Errorf("limit on a snapshot's qgroup: %v", err)
	}
	notSub, err := os.Open(file("snaps"))
	if err != nil {
		t.Fatal(err)
	}
	defer notSub.Close()
	if err := Snapshot(notSub, root, "x", true); err == nil {
		t.Error("Snapshot of a directory that is not a subvolume succeeded")
	}
	if err := DeleteSubvolume(snaps, "s1"); err != nil {
		t.Errorf("deleting a read-only snapshot: %v", err)
	}
	if err := DeleteSubvolume(root, "restored"); err != nil {
		t.Errorf("deleting a writable snapshot: %v", err)
	}
	if _, err := os.Lstat(file("snaps", "s1")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("snapshot still there after its delete: %v", err)
	}
	if err := Snapshot(src, snaps, "bad/name", true); !errors.Is(err, ErrInvalid) {
		t.Errorf("Snapshot with a bad name = %v, want ErrInvalid", err)
	}
}
