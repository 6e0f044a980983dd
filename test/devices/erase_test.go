package devices

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/localdisk-csi/localdisk/test/testutil"
)

// TestDevice_FailedEraseIsRetried: an erase that fails leaves the disk
// claimed (never handed out with old data); once the cause is gone the
// health watch erases it and hands it out again, with no DeleteVolume
// retry (a CO that got OK from a delete whose erase went on in the
// background never asks again).
func TestDevice_FailedEraseIsRetried(t *testing.T) {
	testutil.RequireRoot(t)
	dir := testutil.ShortTempDir(t)
	dev := testutil.LoopDevice(t, dir, 64)
	e := newEnv(t, dir, []string{dev}, "ext4", "zero", "--health-interval=200ms")
	id, err := e.create("secret", false)
	must(t, err)
	target, err := e.publish(id, false)
	must(t, err)
	marker := []byte("LOCALDISK-RETRY-MARKER-91c2")
	must(t, os.WriteFile(filepath.Join(target, "s"), bytes.Repeat(marker, 4096), 0o644))
	e.unpublish(id)

	// An exclusive open makes the plugin's own (O_EXCL) open of the device
	// fail with EBUSY, as a device in use by someone else would.
	fd, err := unix.Open(dev, unix.O_RDONLY|unix.O_EXCL|unix.O_CLOEXEC, 0)
	must(t, err)
	held := true
	release := func() {
		if held {
			held = false
			unix.Close(fd)
		}
	}
	defer release()
	if err := e.delete(id); err == nil {
		t.Fatal("DeleteVolume succeeded although the device could not be opened for its erase")
	}
	if _, err := e.create("while-erasing", false); err == nil {
		t.Fatal("the disk was handed out again before its erase")
	}
	release()

	// Nothing calls DeleteVolume again: the watch must finish the erase.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err = e.create("next", false); err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the disk was not erased and handed out again by the health watch: %v\n%s", err, e.p.LogPath)
		}
		time.Sleep(100 * time.Millisecond)
	}
	data, err := os.ReadFile(dev)
	must(t, err)
	if bytes.Contains(data, marker) {
		t.Error("old data found on the device handed out again")
	}
}
