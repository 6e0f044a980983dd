package testutil

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestUnplugAndRemountDisk(t *testing.T) {
	RequireRoot(t)
	dir := ShortTempDir(t)
	disk := LoopDisk(t, dir, 64, "ext4")
	if err := os.WriteFile(filepath.Join(disk, "data"), []byte("kept"), 0o600); err != nil {
		t.Fatal(err)
	}
	replug := UnplugDisk(t, disk)
	if got := Mounts(t, dir); len(got) != 0 {
		t.Errorf("mounted after UnplugDisk: %q", got)
	}
	if _, err := os.Stat(filepath.Join(disk, "data")); !os.IsNotExist(err) {
		t.Errorf("the disk's data is visible while unplugged: %v", err)
	}
	replug()
	RemountDisk(t, disk)
	if got := Mounts(t, dir); !slices.Equal(got, []string{disk}) {
		t.Errorf("mounted after replug and RemountDisk: %q, want only %s", got, disk)
	}
	if data, err := os.ReadFile(filepath.Join(disk, "data")); err != nil || string(data) != "kept" {
		t.Errorf("data after RemountDisk: %q, %v", data, err)
	}
}
