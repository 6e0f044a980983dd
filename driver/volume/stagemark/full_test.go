package stagemark

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/localdisk-csi/localdisk/driver/layout"
)

// A staging record that cannot be written (the state disk is full) leaves
// nothing: no temp file in the staging directory, nothing recorded; once
// there is room, the same Add succeeds.
func TestRecords_FailedWriteLeavesNoTempFile(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("SKIP_TESTS_USING_ROOT") == "1" {
			t.Skip("needs root (a full tmpfs)")
		}
		t.Fatal("needs root (a full tmpfs); set SKIP_TESTS_USING_ROOT=1 to skip")
	}
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=64k,mode=0700"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	r := openRecords(t, dir, "boot-1")
	staging := filepath.Join(dir, "co", "staging")
	if err := os.MkdirAll(staging, 0o750); err != nil {
		t.Fatal(err)
	}
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	for buf := make([]byte, 4096); ; {
		if _, err := f.Write(buf); err != nil {
			if !errors.Is(err, unix.ENOSPC) {
				t.Fatal(err)
			}
			break
		}
	}
	f.Close()
	if err := r.Add("vol-1", staging); err == nil {
		t.Fatal("Add succeeded on a full disk")
	}
	if r.Has("vol-1", staging) {
		t.Errorf("a record that was not written is kept in memory")
	}
	ents, err := os.ReadDir(filepath.Join(dir, layout.StagingDir))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("left in the staging directory by a failed write: %s", e.Name())
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if err := r.Add("vol-1", staging); err != nil || !r.Has("vol-1", staging) {
		t.Errorf("Add once there is room: %v", err)
	}
}

// A mount stacked on a staging directory hides it but does not remove it:
// the volume stays staged (DeleteVolume must go on refusing it).
func TestRecords_MountOverStagingKeepsItStaged(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("SKIP_TESTS_USING_ROOT") == "1" {
			t.Skip("needs root (a mount)")
		}
		t.Fatal("needs root (a mount); set SKIP_TESTS_USING_ROOT=1 to skip")
	}
	dir := t.TempDir()
	p := mkdirs(t, dir, "co/staging")
	r := openRecords(t, dir, "boot-1")
	if err := r.Add("vol-1", p); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", p, "tmpfs", 0, "size=64k"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(p, unix.MNT_DETACH) })
	if got, ok := r.Staged("vol-1"); !ok || got != p {
		t.Errorf("with a mount over its staging directory: Staged %q %v, want %s", got, ok, p)
	}
	if id, ok := r.At(p); !ok || id != "vol-1" {
		t.Errorf("At: %q %v", id, ok)
	}
}
