package poolroot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/localdisk-csi/localdisk/driver/capacity"
	"github.com/localdisk-csi/localdisk/driver/pool"
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
	Quota capacity.QuotaDecision
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
	in := Inspection{Dir: CanonicalDir(spec.Path)}
	if !spec.Kind.Directory() {
		in.Err = fmt.Errorf("pool %q is a %s pool, not a directory pool", spec.Name, spec.Kind)
		return in
	}
	if _, err := os.Lstat(in.Dir); errors.Is(err, fs.ErrNotExist) {
		in.Missing = true
		if spec.Kind != pool.Root || hasRecords() {
			in.Err = fmt.Errorf("%w: pool %q: %v", capacity.ErrUnhealthy, spec.Name, err)
			return in
		}
		// newPool makes it; the filesystem is that of its nearest parent.
		in.Fresh = true
		in.Quota = capacity.InspectQuota(spec, in.Dir)
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
		in.Err = fmt.Errorf("%w: pool %q: %v", capacity.ErrUnhealthy, spec.Name, err)
		return in
	}
	in.Fresh = fresh
	quotaDir := in.Dir
	if !fresh {
		p := healthyAtFirst(&Pool{Pool: capacity.NewPool(pool.New(spec, 0, nil), in.Dir)})
		p.marker.Store(found.ID)
		root, err := p.Open() // reads and compares the marker only
		if err != nil {
			in.Err = err
			return in
		}
		root.Close()
		quotaDir = filepath.Join(in.Dir, dataDir)
	}
	in.Quota = capacity.InspectQuota(spec, quotaDir)
	if in.Quota.Method == capacity.EnforceNone && spec.Quota == pool.QuotaRequired {
		in.Err = fmt.Errorf("%w: pool %q: quota: required, but %v", capacity.ErrUnhealthy, spec.Name, in.Quota.Reason)
	}
	return in
}
