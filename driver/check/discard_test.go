package check

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// noDiscardDevice attaches a 16 MiB loop device that cannot discard. A
// discard limit written to a loop device outlives its detach and cannot be
// written back, so the device is one of its own: added at a high index
// (LOOP_CTL_ADD), which no other test is handed, and removed at the end.
func noDiscardDevice(t *testing.T, dir string) string {
	t.Helper()
	ctl, err := unix.Open("/dev/loop-control", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ctl)
	idx := -1
	for i := 1000; i < 1100 && idx < 0; i++ {
		if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(ctl), unix.LOOP_CTL_ADD, uintptr(i)); errno == 0 {
			idx = i
		} else if errno != unix.EEXIST {
			t.Fatalf("LOOP_CTL_ADD %d: %v", i, errno)
		}
	}
	if idx < 0 {
		t.Fatal("no free loop index in 1000-1099")
	}
	dev := fmt.Sprintf("/dev/loop%d", idx)
	t.Cleanup(func() {
		exec.Command("losetup", "-d", dev).Run()
		fd, err := unix.Open("/dev/loop-control", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Error(err)
			return
		}
		defer unix.Close(fd)
		for range 50 { // the detach completes asynchronously
			_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.LOOP_CTL_REMOVE, uintptr(idx))
			if errno == 0 || errno == unix.ENODEV {
				return
			}
			if !errors.Is(errno, unix.EBUSY) {
				t.Errorf("LOOP_CTL_REMOVE %d: %v", idx, errno)
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Errorf("loop device %s still busy: not removed", dev)
	})
	img := filepath.Join(dir, "nodiscard.img")
	if err := os.WriteFile(img, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(img, 16<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("losetup", dev, img).CombinedOutput(); err != nil {
		t.Fatalf("losetup %s: %v %s", dev, err, out)
	}
	limit := filepath.Join("/sys/block", filepath.Base(dev), "queue", "discard_max_bytes")
	if err := os.WriteFile(limit, []byte("0"), 0o644); err != nil {
		t.Fatalf("turning discard off on %s: %v", dev, err)
	}
	return dev
}
