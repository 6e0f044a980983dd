// Package capacity is how localdisk holds ROOT/PATH volumes to their
// capacities and measures what they use: the enforcement a pool's
// filesystem allows (XFS/ext4 project quotas, btrfs qgroups on a subvolume
// per volume, or accounting only), the project IDs and limits, a volume's
// directory made and removed with its quota, the usage of a volume (its
// quota's counts, a disk's statfs, or a bounded walk of its tree, cached),
// what a pool's volumes hold where capacity is only accounted (overuse),
// and the room a pool's filesystem still has for new volumes (its free
// space less the pools' reserves and what their volumes may still write).
//
// It knows nothing of the volume manager: it works on the pools (Pool:
// the capacity side of a configured pool) and the records it is given, so
// driver/volume imports it and never the other way round.
package capacity

import (
	"errors"
	"sync/atomic"

	"github.com/localdisk-csi/localdisk/driver/pool"
)

// ErrUnhealthy: a pool cannot serve (here: `quota: required` and its
// capacity cannot be enforced). driver/volume's ErrUnhealthy is this one.
var ErrUnhealthy = errors.New("pool unhealthy")

// Pool is the capacity side of a configured pool on this node.
type Pool struct {
	*pool.Pool
	// Dir is the canonical pool root (ROOT/PATH).
	Dir string
	// enforce is how capacities are enforced (see Enforcement), alloc the
	// project ID allocator of its filesystem, quotaLogged whether the lack
	// of enforcement was logged.
	enforce     atomic.Value
	alloc       atomic.Value
	quotaLogged atomic.Bool
	// used is what its volumes hold where capacity is only accounted
	// (Measured), -1 until measured; overLogged whether going over was
	// logged.
	used       atomic.Int64
	overLogged atomic.Bool
	// settled reports what of its allocation is written already and never
	// grows (ready snapshots: SetSettled); nil: nothing.
	settled atomic.Pointer[func() int64]
}

// NewPool is the capacity side of p, whose root (ROOT/PATH) is dir.
func NewPool(p *pool.Pool, dir string) *Pool {
	c := &Pool{Pool: p, Dir: dir}
	c.used.Store(-1)
	return c
}
