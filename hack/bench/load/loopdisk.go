package load

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// LoopDisk is a filesystem on a sparse image file attached to a loop
// device and mounted, for a pool under test:
//
//	DIR/disk.img  the image (sparse)
//	DIR/mnt/      its mount point
//
// The loop device does direct I/O on the image (losetup --direct-io=on)
// where the kernel allows it, so what is written to the disk under test
// reaches the real disk and is not kept a second time in the page cache of
// the image file (DirectIO says whether it does).
type LoopDisk struct {
	Image, Mountpoint, Device, FSType string
	DirectIO                          bool
	mounted                           bool
}

// NewLoopDisk makes the image of size bytes in dir (which must exist),
// formats it with mkfs (the command and its options before the image
// path, e.g. ["mkfs.xfs", "-f", "-q", "-m", "reflink=1"]), attaches it and
// mounts it as fstype with the mount data opts. On an error what was made
// is undone.
func NewLoopDisk(ctx context.Context, dir string, size int64, mkfs []string, fstype, opts string) (d *LoopDisk, err error) {
	d = &LoopDisk{Image: filepath.Join(dir, "disk.img"), Mountpoint: filepath.Join(dir, "mnt"), FSType: fstype}
	defer func() {
		if err != nil {
			err = errors.Join(err, d.Close())
			d = nil
		}
	}()
	f, err := os.OpenFile(d.Image, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return d, err
	}
	err = f.Truncate(size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return d, err
	}
	if _, err := command(ctx, mkfs[0], append(mkfs[1:], d.Image)...); err != nil {
		return d, err
	}
	out, err := command(ctx, "losetup", "--find", "--show", "--direct-io=on", d.Image)
	if err != nil {
		return d, err
	}
	d.Device = strings.TrimSpace(out)
	if !strings.HasPrefix(d.Device, "/dev/loop") {
		dev := d.Device
		d.Device = ""
		return d, fmt.Errorf("losetup printed %q, not a loop device", dev)
	}
	if dio, err := os.ReadFile(filepath.Join("/sys/block", filepath.Base(d.Device), "loop/dio")); err == nil {
		d.DirectIO = strings.TrimSpace(string(dio)) == "1"
	}
	if err := os.Mkdir(d.Mountpoint, 0o755); err != nil {
		return d, err
	}
	if err := unix.Mount(d.Device, d.Mountpoint, fstype, 0, opts); err != nil {
		return d, fmt.Errorf("mounting %s (%s, %q) at %s: %w", d.Device, fstype, opts, d.Mountpoint, err)
	}
	d.mounted = true
	return d, nil
}

// Close unmounts the filesystem (lazily if it stays busy for 10 s),
// detaches the loop device and removes the image and the mount point.
func (d *LoopDisk) Close() error {
	var errs []error
	if d.mounted {
		deadline := time.Now().Add(10 * time.Second)
		for {
			err := unix.Unmount(d.Mountpoint, 0)
			if err == nil || errors.Is(err, unix.EINVAL) {
				break
			}
			if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
				errs = append(errs, fmt.Errorf("unmount %s: %w; detached lazily", d.Mountpoint, err))
				if err := unix.Unmount(d.Mountpoint, unix.MNT_DETACH); err != nil {
					// Never remove what may still be a mounted filesystem.
					return errors.Join(append(errs, err)...)
				}
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		d.mounted = false
	}
	if d.Device != "" {
		// A device still in use (a lazily detached filesystem) is only
		// marked for auto-clear by the kernel.
		if _, err := command(context.Background(), "losetup", "--detach", d.Device); err != nil {
			errs = append(errs, err)
		}
		d.Device = ""
	}
	for _, p := range []string{d.Mountpoint, d.Image} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Trim gives the freed blocks of the filesystem back to the image
// (fstrim; the loop device punches holes), so that the image takes no
// more of the real disk than the data it holds.
func (d *LoopDisk) Trim(ctx context.Context) error {
	_, err := command(ctx, "fstrim", d.Mountpoint)
	return err
}

// command runs a system tool (also looked for in the sbin directories) and
// returns its standard output; its error has the command line and output.
func command(ctx context.Context, name string, args ...string) (string, error) {
	path, err := exec.LookPath(name)
	if err != nil {
		for _, dir := range []string{"/usr/local/sbin", "/usr/sbin", "/sbin"} {
			if fi, serr := os.Stat(filepath.Join(dir, name)); serr == nil && fi.Mode()&0o111 != 0 {
				path, err = filepath.Join(dir, name), nil
				break
			}
		}
		if err != nil {
			return "", fmt.Errorf("%s: %w", name, err)
		}
	}
	cmd := exec.CommandContext(ctx, path, args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w: %s%s", name, strings.Join(args, " "), err, stderr.String(), stdout.String())
	}
	return stdout.String(), nil
}

// Command runs a system tool as NewLoopDisk does (cp, fstrim, ...).
func Command(ctx context.Context, name string, args ...string) (string, error) {
	return command(ctx, name, args...)
}
