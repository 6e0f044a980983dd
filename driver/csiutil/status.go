// Package csiutil holds what the CSI adaptors share: the one mapping from
// domain errors to gRPC status codes, and the checks of volume capabilities.
package csiutil

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/localdisk-csi/localdisk/driver/pool"
	"github.com/localdisk-csi/localdisk/driver/quota"
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

// Code is the gRPC code for a domain error.
func Code(err error) codes.Code {
	for _, m := range []struct {
		target error
		code   codes.Code
	}{
		{volume.ErrInvalid, codes.InvalidArgument},
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
	} {
		if errors.Is(err, m.target) {
			return m.code
		}
	}
	return codes.Internal
}

// Errorf is a status error with a formatted message.
func Errorf(c codes.Code, format string, a ...any) error { return status.Errorf(c, format, a...) }
