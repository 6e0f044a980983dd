package testutil

import (
	"os"
	"strings"
	"testing"
)

// LoopDevice makes a blank block device for a test: a sparse image of
// sizeMiB MiB in dir attached to a loop device, whose path it returns (no
// filesystem, nothing mounted). The cleanup, registered first, unmounts
// whatever is still mounted from the device (reporting it as a test error:
// a leftover mount is a bug), detaches it and removes the image. Needs root.
func LoopDevice(t testing.TB, dir string, sizeMiB int) string {
	t.Helper()
	RequireRoot(t)
	f, err := os.CreateTemp(dir, "dev*.img")
	if err != nil {
		t.Fatalf("creating the device image: %v", err)
	}
	image := f.Name()
	err = f.Truncate(int64(sizeMiB) << 20)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	d := &loopDisk{image: image}
	t.Cleanup(func() { d.cleanup(t) })
	if err != nil {
		t.Fatalf("sizing the device image: %v", err)
	}
	out, err := run("losetup", "--find", "--show", image)
	if err != nil {
		t.Fatalf("LoopDevice: %v", err)
	}
	d.device = strings.TrimSpace(out)
	if !strings.HasPrefix(d.device, "/dev/loop") {
		t.Fatalf("LoopDevice: losetup printed %q, not a loop device", out)
	}
	return d.device
}
