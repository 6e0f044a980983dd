package snapshot

import (
	"fmt"
	"os"

	"github.com/localdisk-csi/localdisk/driver/capacity"
	"github.com/localdisk-csi/localdisk/driver/copytree"
	"github.com/localdisk-csi/localdisk/driver/pool"
)

// Method is how a pool snapshots and clones its volumes.
type Method string

// The methods, best first.
const (
	// None: the pool refuses snapshots and clones.
	None Method = ""
	// Btrfs: volumes are subvolumes; snapshots are btrfs snapshots.
	Btrfs Method = "btrfs"
	// Reflink: a tree copy whose file data is shared (FICLONE).
	Reflink Method = "reflink"
	// Copy: a full copy of the data (`snapshots: copy`).
	Copy Method = "copy"
)

// String is the method as status and check report it.
func (m Method) String() string {
	if m == None {
		return "none"
	}
	return string(m)
}

// Decision is a pool's method, and why it has none.
type Decision struct {
	Method Method
	Reason error
}

// Decide finds how a pool with that spec copies volumes: enforcement is
// how it enforces capacities (capacity.Pool.Enforcement, or what `check`
// would decide), dir a directory of its filesystem (nil: unknown, then
// only btrfs or copy can be decided).
func Decide(spec pool.Spec, enforcement string, dir *os.File) Decision {
	if !spec.Kind.Directory() {
		return Decision{Reason: fmt.Errorf("%w: pool %q is a MOUNT pool: its volumes are whole disks", ErrNotSupported, spec.Name)}
	}
	if enforcement == capacity.EnforceBtrfs {
		return Decision{Method: Btrfs}
	}
	var probe error
	if dir != nil {
		ok, err := copytree.CanReflink(dir)
		if ok {
			return Decision{Method: Reflink}
		}
		probe = err
	}
	if spec.Snapshots == pool.SnapshotsCopy {
		return Decision{Method: Copy}
	}
	why := "its filesystem can neither snapshot (btrfs with quotas) nor share file data (reflink)"
	if probe != nil {
		why = fmt.Sprintf("the reflink probe failed (%v)", probe)
	}
	return Decision{Reason: fmt.Errorf("%w: pool %q: %s; set `snapshots: copy` on the pool to allow full copies",
		ErrNotSupported, spec.Name, why)}
}
