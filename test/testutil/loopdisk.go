package testutil

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// commandTimeout bounds each external command a helper runs.
const commandTimeout = 2 * time.Minute

// mkfsArgs are the options given to mkfs.<fstype>, before the image path.
// ext4 reserves no blocks for root (-m 0), so the size of the filesystem
// is predictable; -F and -f let mkfs write to a regular file.
var mkfsArgs = map[string][]string{
	"ext4":  {"-F", "-q", "-m", "0"},
	"xfs":   {"-f", "-q"},
	"btrfs": {"-f", "-q"},
	// XFS with reflinks asked for explicitly (snapshots share file data).
	"xfs-reflink": {"-f", "-q", "-m", "reflink=1"},
}

// LoopDisk makes an extra "disk" for a test: it creates a sparse image file
// of sizeMiB MiB in dir, makes a filesystem of type fstype ("ext4" or
// "xfs") on it, attaches it to a loop device (losetup --find --show) and
// mounts that device at a new, empty directory in dir, which it returns.
// XFS needs at least 300 MiB.
//
// It needs root (see RequireRoot). The cleanup, registered before anything
// is created so that it also undoes a half-made disk, unmounts the
// filesystem, detaches the loop device and removes the image and the
// mount point. A filesystem that stays busy is detached lazily and reported
// as a test error.
func LoopDisk(t testing.TB, dir string, sizeMiB int, fstype string) (mountpoint string) {
	t.Helper()
	RequireRoot(t)
	opts, ok := mkfsArgs[fstype]
	if !ok {
		t.Fatalf("LoopDisk: unsupported filesystem type %q", fstype)
	}
	if sizeMiB <= 0 {
		t.Fatalf("LoopDisk: size must be positive, got %d MiB", sizeMiB)
	}

	mountpoint, err := os.MkdirTemp(dir, "disk")
	if err != nil {
		t.Fatalf("creating a mount point: %v", err)
	}
	d := &loopDisk{image: mountpoint + ".img", mountpoint: mountpoint}
	t.Cleanup(func() { d.cleanup(t) })

	f, err := os.OpenFile(d.image, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatalf("creating the disk image: %v", err)
	}
	err = f.Truncate(int64(sizeMiB) << 20)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("sizing the disk image: %v", err)
	}

	fstype, _ = strings.CutSuffix(fstype, "-reflink") // the filesystem's own name
	if _, err := run("mkfs."+fstype, append(opts, d.image)...); err != nil {
		t.Fatalf("LoopDisk: %v", err)
	}
	out, err := run("losetup", "--find", "--show", d.image)
	if err != nil {
		t.Fatalf("LoopDisk: %v", err)
	}
	d.device = strings.TrimSpace(out)
	if !strings.HasPrefix(d.device, "/dev/loop") {
		t.Fatalf("LoopDisk: losetup printed %q, not a loop device", out)
	}
	if err := unix.Mount(d.device, d.mountpoint, fstype, 0, ""); err != nil {
		t.Fatalf("LoopDisk: mounting %s (%s) at %s: %v", d.device, fstype, d.mountpoint, err)
	}
	d.mounted = true
	return mountpoint
}

// loopDisk is what LoopDisk has made so far, for its cleanup.
type loopDisk struct {
	image      string
	mountpoint string
	device     string // empty until attached
	mounted    bool
}

// cleanup undoes whatever part of the disk was made, in reverse order.
func (d *loopDisk) cleanup(t testing.TB) {
	if d.mounted {
		if err := unmountPatiently(d.mountpoint); err != nil {
			t.Errorf("unmounting loop disk %s: %v; detaching it lazily", d.mountpoint, err)
			if err := unix.Unmount(d.mountpoint, unix.MNT_DETACH); err != nil {
				t.Errorf("detaching loop disk %s: %v", d.mountpoint, err)
				return // never remove a directory that is still a mount point
			}
		}
	}
	if d.device != "" {
		// A device still in use (a lazily detached or bind-mounted
		// filesystem) is only marked for auto-clear by the kernel.
		if _, err := run("losetup", "--detach", d.device); err != nil {
			t.Errorf("detaching loop device: %v", err)
		}
	}
	if err := os.Remove(d.image); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Errorf("removing disk image: %v", err)
	}
	if err := os.Remove(d.mountpoint); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Errorf("removing mount point: %v", err)
	}
}

// unmountPatiently unmounts mountpoint, retrying for a few seconds while
// the filesystem is busy (a process that just exited may still hold it).
func unmountPatiently(mountpoint string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		err := unix.Unmount(mountpoint, 0)
		if err == nil || errors.Is(err, unix.EINVAL) {
			return nil // EINVAL: not (or no longer) a mount point
		}
		if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// run runs the system tool name with args and returns its standard output.
// Its error includes the command line and what the tool printed.
func run(name string, args ...string) (string, error) {
	path, err := lookTool(name)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w: %s%s", name, strings.Join(args, " "),
			err, stderr.String(), stdout.String())
	}
	return stdout.String(), nil
}

// lookTool finds a system tool on PATH or in the sbin directories, which
// are not on every root PATH (sudo, su).
func lookTool(name string) (string, error) {
	if path, err := exec.LookPath(name); err == nil {
		return path, nil
	}
	for _, dir := range []string{"/usr/local/sbin", "/usr/sbin", "/sbin"} {
		path := dir + "/" + name
		if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return path, nil
		}
	}
	return "", fmt.Errorf("%s not found: run hack/install-test-deps.sh", name)
}
