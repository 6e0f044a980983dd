package check

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/localdisk-csi/localdisk/driver/pool"
)

// deviceDisk reports what would fail later on a present device disk: an
// erase by discard on a device without discard, and a blank device that
// this node's mkfs.xfs would format with features an older kernel cannot
// mount.
func (r *run) deviceDisk(spec pool.Spec, d pool.DiskSpec, subject string) {
	if spec.Erase == pool.EraseDiscard {
		switch ok, err := discards(d.Device); {
		case err != nil:
			r.warn(subject, "erase: discard, but whether %s discards is unknown: %v", d.Device, err)
		case !ok:
			r.warn(subject, "erase: discard, but %s does not support discard (queue/discard_max_bytes is 0): "+
				"deleting a volume on it fails and is retried, the disk staying claimed; give the pool erase: zero", d.Device)
		}
	}
	if strings.EqualFold(d.FSType, pool.FSXFS) && len(d.MkfsOptions) == 0 && r.kernelBefore(5, 10) {
		r.warn(subject, "fsType xfs on Linux %s: a blank device is formatted with this node's mkfs.xfs defaults, "+
			"and a recent mkfs.xfs turns on features (reflink, bigtime, inobtcount) older kernels cannot mount; "+
			`give mkfsOptions such as ["-m", "reflink=0,bigtime=0,inobtcount=0"] (docs/support.md)`, r.release())
	}
}

// discards reports whether the block device dev supports discard: its
// queue's discard_max_bytes (a partition's is its disk's) is not 0.
func discards(dev string) (bool, error) {
	var st unix.Stat_t
	if err := unix.Stat(dev, &st); err != nil {
		return false, err
	}
	sys := fmt.Sprintf("/sys/dev/block/%d:%d", unix.Major(st.Rdev), unix.Minor(st.Rdev))
	for _, p := range []string{filepath.Join(sys, "queue", "discard_max_bytes"), filepath.Join(sys, "..", "queue", "discard_max_bytes")} {
		data, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		n, err := strconv.ParseUint(strings.TrimSpace(string(data)), 10, 64)
		if err != nil {
			return false, fmt.Errorf("%s: %v", p, err)
		}
		return n > 0, nil
	}
	return false, fmt.Errorf("no queue/discard_max_bytes under %s", sys)
}

// release is the running kernel's release string.
func (r *run) release() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return "?"
	}
	return unix.ByteSliceToString(u.Release[:])
}

// kernelBefore reports whether the running kernel is older than
// major.minor (false when its release cannot be read).
func (r *run) kernelBefore(major, minor int) bool {
	maj, min, ok := kernelVersion(r.release())
	return ok && (maj < major || maj == major && min < minor)
}

// kernelVersion reads "5.4.0-150-generic" as 5, 4.
func kernelVersion(release string) (major, minor int, ok bool) {
	parts := strings.SplitN(release, ".", 3)
	if len(parts) < 2 {
		return 0, 0, false
	}
	major, err1 := strconv.Atoi(parts[0])
	end := strings.IndexFunc(parts[1], func(r rune) bool { return r < '0' || r > '9' })
	if end >= 0 {
		parts[1] = parts[1][:end]
	}
	minor, err2 := strconv.Atoi(parts[1])
	return major, minor, err1 == nil && err2 == nil
}
