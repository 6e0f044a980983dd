package volume

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/localdisk-csi/localdisk/driver/pool"
	"github.com/localdisk-csi/localdisk/driver/quota"
)

// Inspection is what the start-up of a Manager would find of a ROOT/PATH
// pool (refresh and setupQuota), found without writing anything: for
// `localdisk check` and the findings logged at start.
type Inspection struct {
	// Dir is the pool's canonical root.
	Dir string
	// Missing: the root does not exist yet (a ROOT pool's is made at start).
	Missing bool
	// Fresh: the pool carries no marker yet and start-up initialises it.
	Fresh bool
	// Quota is how capacities will be enforced (zero with `quota: off`).
	Quota QuotaDecision
	// Err says why the pool would be unhealthy (nil: healthy).
	Err error
}

// InspectPool inspects a ROOT/PATH pool as the Manager's start-up would
// (see refresh), reading the state dir's recorded marker and the pool's
// own, without creating, writing or enabling anything. hasRecords says
// whether a volume record points into the pool; it is asked only when that
// decides (a pool with no marker anywhere), so a caller can read the
// records lazily.
func InspectPool(stateDir string, spec pool.Spec, hasRecords func() bool) Inspection {
	in := Inspection{Dir: canonicalDir(spec.Path)}
	if !spec.Kind.Directory() {
		in.Err = fmt.Errorf("pool %q is a %s pool, not a directory pool", spec.Name, spec.Kind)
		return in
	}
	if _, err := os.Lstat(in.Dir); errors.Is(err, fs.ErrNotExist) {
		in.Missing = true
		if spec.Kind != pool.Root || hasRecords() {
			in.Err = fmt.Errorf("%w: pool %q: %v", ErrUnhealthy, spec.Name, err)
			return in
		}
		// newPool makes it; the filesystem is that of its nearest parent.
		in.Fresh = true
		in.Quota = inspectQuota(spec, existingParent(in.Dir))
		return in
	}
	stateRoot, err := os.OpenRoot(stateDir)
	if err == nil {
		defer stateRoot.Close()
	} else if !errors.Is(err, fs.ErrNotExist) {
		in.Err = fmt.Errorf("state dir %s: %w", stateDir, err)
		return in
	}
	found, _, fresh, err := findMarker(stateRoot, spec, in.Dir, hasRecords)
	if err != nil {
		in.Err = fmt.Errorf("%w: pool %q: %v", ErrUnhealthy, spec.Name, err)
		return in
	}
	in.Fresh = fresh
	quotaDir := in.Dir
	if !fresh {
		p := healthyAtFirst(&Pool{Pool: pool.New(spec, 0, nil), dir: in.Dir})
		p.marker.Store(found.ID)
		root, err := p.open() // reads and compares the marker only
		if err != nil {
			in.Err = err
			return in
		}
		root.Close()
		quotaDir = filepath.Join(in.Dir, dataDir)
	}
	in.Quota = inspectQuota(spec, quotaDir)
	if in.Quota.Method == enforceNone && spec.Quota == pool.QuotaRequired {
		in.Err = fmt.Errorf("%w: pool %q: quota: required, but %v", ErrUnhealthy, spec.Name, in.Quota.Reason)
	}
	return in
}

// inspectQuota is DecideQuota on the filesystem of dir; a pool with
// `quota: off` gets the zero decision.
func inspectQuota(spec pool.Spec, dir string) QuotaDecision {
	if spec.Quota == pool.QuotaOff {
		return QuotaDecision{}
	}
	f, err := os.Open(dir)
	if err != nil {
		return QuotaDecision{Reason: err}
	}
	defer f.Close()
	qfs, err := quota.NewFS(f)
	if err != nil {
		return QuotaDecision{Reason: err}
	}
	defer qfs.Close()
	return DecideQuota(spec, f, qfs)
}

// existingParent is dir or its nearest ancestor that exists.
func existingParent(dir string) string {
	for {
		if _, err := os.Lstat(dir); err == nil || dir == "/" {
			return dir
		}
		dir = filepath.Dir(dir)
	}
}

// IsMountRoot reports whether dir is the root of a mounted filesystem (a
// directory on another device than its parent): what a PATH pool's root
// and a MOUNT disk's path should be.
func IsMountRoot(dir string) bool { return mountRoot(dir) }

// DeviceIdentity is what identifies a block device beyond its /dev name
// (WWN, serial, filesystem UUID, loop backing file), as a device disk's
// volume records it; an error when it has none (such a disk is never
// handed out).
func DeviceIdentity(dev string) (map[string]string, error) { return deviceIdentity(dev) }

// SameDisk reports whether two identities (DeviceIdentity) name one disk.
func SameDisk(a, b map[string]string) bool { return sameDisk(a, b) }

// BlockDevice fails unless dev (followed through /dev/disk/by-* links) is
// a block device, as a device disk must be to be present.
func BlockDevice(dev string) error {
	_, err := blockDevice(dev)
	return err
}

// ReadOnlyFS reports whether the filesystem holding dir is mounted
// read-only.
func ReadOnlyFS(dir string) bool {
	var st unix.Statfs_t
	return unix.Statfs(dir, &st) == nil && st.Flags&unix.ST_RDONLY != 0
}
