// Package volume is localdisk's volume manager: it ties the pools, the
// crash-safe records and the per-volume locks together and implements the
// life of a volume (create, delete, list, capacity) and the start-up
// convergence that finishes or rolls back what a crash left half-done.
//
// It knows nothing of gRPC: errors are the sentinels below (and those of
// package pool), mapped to codes by driver/csiutil.
package volume

import (
	"errors"
	"fmt"

	"github.com/localdisk-csi/localdisk/driver/capacity"
	"github.com/localdisk-csi/localdisk/driver/volume/catalog"
	"github.com/localdisk-csi/localdisk/driver/volume/devfind"
	"github.com/localdisk-csi/localdisk/driver/volume/fill"
	"github.com/localdisk-csi/localdisk/driver/volume/poolroot"
)

// Sentinel errors.
var (
	// ErrInvalid: a request argument is malformed (unknown parameter, unknown
	// pool, unsupported capability).
	ErrInvalid = fill.ErrInvalid
	// ErrNoBlockPool: a block volume was asked of pools with no device disk
	// (an ErrInvalid: this node can never serve it).
	ErrNoBlockPool = fmt.Errorf("%w: block volumes need a MOUNT pool with device disks", ErrInvalid)
	// ErrNotFound: no such volume.
	ErrNotFound = catalog.ErrNotFound
	// ErrAlreadyExists: the name is taken by a volume with other arguments.
	ErrAlreadyExists = errors.New("volume already exists with other arguments")
	// ErrInUse: the volume is still mounted somewhere.
	ErrInUse = errors.New("volume in use")
	// ErrUnhealthy: the volume's pool or disk is missing or not the recorded one
	// (driver/capacity's, which reports a pool whose capacity cannot be
	// enforced as it must be).
	ErrUnhealthy = capacity.ErrUnhealthy
	// ErrBusy: another operation on the volume is under way; retry later.
	ErrBusy = catalog.ErrBusy
	// ErrDirMissing: the pool is there, but the volume's directory is not
	// (an ErrUnhealthy).
	ErrDirMissing = poolroot.ErrDirMissing
	// ErrDiskReplaced: another disk or filesystem is where the volume's
	// was (an ErrUnhealthy); it is never used as the volume's.
	ErrDiskReplaced = devfind.ErrDiskReplaced
)
