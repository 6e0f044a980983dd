package disk

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"time"

	"golang.org/x/sys/unix"

	"github.com/localdisk-csi/localdisk/driver/failpoint"
	"github.com/localdisk-csi/localdisk/driver/pool"
)

// eraseChunk is how much of a device is zeroed between two progress records.
const eraseChunk = 1 << 30

// Job is one erase of a device.
type Job struct {
	// Device is the block device, found by its identity.
	Device string
	// Method is the pool's erase (pool.EraseZero, pool.EraseDiscard or
	// pool.EraseNone: signatures only), Pool its name (for messages).
	Method pool.Erase
	Pool   string
	// Offset is where a zero erase resumes (the progress last recorded).
	Offset int64
	// Progress records that a zero erase has reached off; an error stops it.
	Progress func(off int64) error
}

// Erase erases the device as the job says, calling Progress after every
// chunk zeroed, then removes every signature (wipefs), so that the next
// stage formats it afresh. Between two chunks it stops when ctx ends, its
// progress recorded. It opens the device exclusively: a mounted device is
// never erased.
func Erase(ctx context.Context, j Job) error {
	dev := j.Device
	f, err := os.OpenFile(dev, os.O_RDWR|unix.O_CLOEXEC|unix.O_EXCL, 0)
	if err != nil {
		return fmt.Errorf("erase %s: %w", dev, err)
	}
	defer f.Close()
	size, err := Size(dev)
	if err != nil {
		return err
	}
	switch j.Method {
	case pool.EraseZero:
		for off := j.Offset; off < size; {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("zero %s: stopped at %d: %w", dev, off, err)
			}
			n := min(int64(eraseChunk), size-off)
			if err := zeroRange(f, off, n); err != nil {
				return fmt.Errorf("zero %s at %d: %w", dev, off, err)
			}
			off += n
			if err := j.Progress(off); err != nil {
				return err
			}
			failpoint.Inject(failpoint.WipeStarted)
		}
	case pool.EraseDiscard:
		if err := ioctlRange(int(f.Fd()), unix.BLKDISCARD, 0, uint64(size)); errors.Is(err, unix.EOPNOTSUPP) {
			return fmt.Errorf("discard %s: %w: the device does not support discard; give pool %q erase: zero", dev, err, j.Pool)
		} else if err != nil {
			return fmt.Errorf("discard %s: %w", dev, err)
		}
	}
	if err := f.Sync(); err != nil {
		return err
	}
	f.Close()
	return WipeSignatures(ctx, dev)
}

// zeroRange writes zeros over [off, off+n): BLKZEROOUT where the device
// supports it, plain writes otherwise.
func zeroRange(f *os.File, off, n int64) error {
	err := ioctlRange(int(f.Fd()), unix.BLKZEROOUT, uint64(off), uint64(n))
	if err == nil || !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.EINVAL) {
		return err
	}
	buf := make([]byte, 1<<20)
	for n > 0 {
		w, err := f.WriteAt(buf[:min(int64(len(buf)), n)], off)
		if err != nil {
			return err
		}
		off, n = off+int64(w), n-int64(w)
	}
	return nil
}

// WipeSignatures removes every filesystem and partition-table signature, so
// the next stage formats the device afresh (wipefs(8), argument vector).
func WipeSignatures(ctx context.Context, dev string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "wipefs", "--all", "--quiet", dev).CombinedOutput(); err != nil {
		return fmt.Errorf("wipefs %s: %v: %s", dev, err, out)
	}
	return nil
}
