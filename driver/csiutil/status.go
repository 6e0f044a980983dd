// Package csiutil holds what the CSI adaptors share: the one mapping from
// domain errors to gRPC status codes, and the checks of volume capabilities.
package csiutil

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/localdisk-csi/localdisk/driver/mounts"
	"github.com/localdisk-csi/localdisk/driver/pool"
	"github.com/localdisk-csi/localdisk/driver/quota"
	"github.com/localdisk-csi/localdisk/driver/snapshot"
	"github.com/localdisk-csi/localdisk/driver/volume"
)

// ToStatus maps an error to a gRPC status error. A status error passes
// through; anything unknown is Internal. Codes follow the CSI spec and
// DESIGN.md: never Unavailable for a permanent condition.
func ToStatus(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	return status.Error(Code(err), err.Error())
}

// Code is the gRPC code for a domain error: the first entry of the table
// that the error wraps, else Internal.
func Code(err error) codes.Code {
	for _, m := range table {
		if errors.Is(err, m.target) {
			return m.code
		}
	}
	return codes.Internal
}

// table is the one mapping of domain errors to codes. The quotes are from
// the error tables of spec.md in github.com/container-storage-interface/spec
// (v1.13.0), which csi.proto's messages follow; csi.proto itself names no
// codes.
var table = []struct {
	target error
	code   codes.Code
}{
	// snapshot.ErrNotSupported is a volume.ErrInvalid: CreateVolume's
	// "Source incompatible or not supported | 3 INVALID_ARGUMENT | ...
	// cannot create a volume from the requested source", and for
	// CreateSnapshot of a volume whose pool cannot snapshot (a MOUNT pool,
	// a filesystem without `snapshots: copy`) the general "Invalid or
	// unsupported field in the request | 3 INVALID_ARGUMENT".
	{volume.ErrInvalid, codes.InvalidArgument},
	// CreateVolume: "Source does not exist | 5 NOT_FOUND"; GetSnapshot:
	// "Snapshot does not exist | 5 NOT_FOUND".
	{snapshot.ErrNotFound, codes.NotFound},
	// CreateSnapshot: "Snapshot already exists but is incompatible | 6
	// ALREADY_EXISTS | ... incompatible with the specified `volume_id`".
	{snapshot.ErrAlreadyExists, codes.AlreadyExists},
	{pool.ErrInvalidRange, codes.InvalidArgument},
	{volume.ErrNotFound, codes.NotFound},
	{volume.ErrAlreadyExists, codes.AlreadyExists},
	{pool.ErrInsufficientCapacity, codes.ResourceExhausted},
	{pool.ErrOutOfRange, codes.OutOfRange},
	{volume.ErrInUse, codes.FailedPrecondition},
	{volume.ErrUnhealthy, codes.FailedPrecondition},
	{volume.ErrBusy, codes.Aborted},
	{quota.ErrNotSupported, codes.FailedPrecondition},
	{quota.ErrExhausted, codes.ResourceExhausted},
	{context.Canceled, codes.Canceled},
	{context.DeadlineExceeded, codes.DeadlineExceeded},

	// The node's mounts (driver/mounts).
	//
	// General: "Invalid or unsupported field in the request | 3
	// INVALID_ARGUMENT | Indicates that the one or more fields in this
	// field is either not allowed by the Plugin or has an invalid value."
	{mounts.ErrBadPath, codes.InvalidArgument},
	{mounts.ErrBadMountGroup, codes.InvalidArgument},
	// NodeStageVolume and NodePublishVolume: "Exceeds capabilities | 9
	// FAILED_PRECONDITION | Indicates that the CO has specified
	// capabilities not supported by the volume."
	{mounts.ErrNotServed, codes.FailedPrecondition},
	// NodePublishVolume: "Volume published but is incompatible | 6
	// ALREADY_EXISTS | Indicates that a volume corresponding to the
	// specified `volume_id` has already been published at the specified
	// `target_path` but is incompatible with the specified
	// `volume_capability` or `readonly` flag."
	{mounts.ErrReadOnlyMismatch, codes.AlreadyExists},
	// NodePublishVolume, second publish at another target: "|
	// SINGLE_NODE_SINGLE_WRITER | OK (idempotent) | ALREADY_EXISTS |
	// FAILED_PRECONDITION | FAILED_PRECONDITION |".
	{mounts.ErrSingleWriter, codes.FailedPrecondition},
	// NodePublishVolume: "Staging target path not set | 9
	// FAILED_PRECONDITION | Indicates that `STAGE_UNSTAGE_VOLUME`
	// capability is set but no `staging_target_path` was set. | Caller
	// MUST make sure call to `NodeStageVolume` is made and returns success
	// before retrying": a staging path where the volume is not staged is
	// the same condition.
	{mounts.ErrNotStaged, codes.FailedPrecondition},
	// The spec has no row for these: the node is not in the state the call
	// needs, and will not be until someone else acts (gRPC's
	// FAILED_PRECONDITION: "the system is not in a state required for the
	// operation's execution"), rather than a field the CO could fix.
	{mounts.ErrForeignMount, codes.FailedPrecondition},
	{mounts.ErrMixedReadOnly, codes.FailedPrecondition},
	{mounts.ErrNotADirectory, codes.FailedPrecondition},
	{mounts.ErrNotAFile, codes.FailedPrecondition},
	{mounts.ErrTargetHoldsData, codes.FailedPrecondition},
	{mounts.ErrDeviceMount, codes.FailedPrecondition},
	{mounts.ErrUnresponsive, codes.FailedPrecondition},
	// NodeGetVolumeStats: "Volume does not exist | 5 NOT_FOUND | Indicates
	// that a volume corresponding to the specified `volume_id` does not
	// exist on specified `volume_path`."
	{mounts.ErrNotMounted, codes.NotFound},
}

// Errorf is a status error with a formatted message.
func Errorf(c codes.Code, format string, a ...any) error { return status.Errorf(c, format, a...) }
