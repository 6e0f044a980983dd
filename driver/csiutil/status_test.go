package csiutil

import (
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/localdisk-csi/localdisk/driver/mounts"
	"github.com/localdisk-csi/localdisk/driver/pool"
	"github.com/localdisk-csi/localdisk/driver/volume"
)

// The node's mounts map to the codes the node service picked by hand
// before they moved to driver/mounts.
func TestCode_Mounts(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want codes.Code
	}{
		{mounts.ErrBadPath, codes.InvalidArgument},
		{mounts.ErrBadMountGroup, codes.InvalidArgument},
		{mounts.ErrNotServed, codes.FailedPrecondition},
		{mounts.ErrNotStaged, codes.FailedPrecondition},
		{mounts.ErrForeignMount, codes.FailedPrecondition},
		{mounts.ErrReadOnlyMismatch, codes.AlreadyExists},
		{mounts.ErrMixedReadOnly, codes.FailedPrecondition},
		{mounts.ErrSingleWriter, codes.FailedPrecondition},
		{mounts.ErrNotADirectory, codes.FailedPrecondition},
		{mounts.ErrNotAFile, codes.FailedPrecondition},
		{mounts.ErrTargetHoldsData, codes.FailedPrecondition},
		{mounts.ErrDeviceMount, codes.FailedPrecondition},
		{mounts.ErrNotMounted, codes.NotFound},
		{mounts.ErrUnresponsive, codes.FailedPrecondition},
		{pool.ErrOutOfRange, codes.OutOfRange}, // NodeExpandVolume beyond the volume's size
		{volume.ErrNotFound, codes.NotFound},
		{volume.ErrBusy, codes.Aborted},
	} {
		err := fmt.Errorf("%w: volume v1 at /t", tc.err)
		if got := Code(err); got != tc.want {
			t.Errorf("Code(%v) = %v, want %v", err, got, tc.want)
		}
		if st, _ := status.FromError(ToStatus(err)); st.Code() != tc.want || st.Message() != err.Error() {
			t.Errorf("ToStatus(%v) = %v", err, st)
		}
	}
	// A failure of the node itself is INTERNAL, even when its text quotes
	// a sentinel's: only a wrapped one counts.
	for _, err := range []error{errors.New("mount at /t: operation not permitted"), fmt.Errorf("stage: %v", mounts.ErrNotStaged)} {
		if got := Code(err); got != codes.Internal {
			t.Errorf("Code(%v) = %v, want Internal", err, got)
		}
	}
	// A status error passes through.
	if err := Errorf(codes.Unavailable, "x"); ToStatus(err) != err {
		t.Errorf("ToStatus changed a status error")
	}
}
