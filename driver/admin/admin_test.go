package admin

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/localdisk-csi/localdisk/driver/volume"
)

// Errors reach the client with the code of the one error table, never as
// UNKNOWN (a raw error's code in gRPC).
func TestHandler_Codes(t *testing.T) {
	dec := func(any) error { return nil }
	for _, tc := range []struct {
		name string
		err  error
		want codes.Code
	}{
		{"a raw error is INTERNAL", errors.New("read mountinfo: no such file"), codes.Internal},
		{"a domain error takes its code", fmt.Errorf("%w: v1", volume.ErrNotFound), codes.NotFound},
		{"a canceled call is CANCELED", context.Canceled, codes.Canceled},
		{"a status passes through", status.Error(codes.Unavailable, "x"), codes.Unavailable},
	} {
		h := handler("Status", func(context.Context) (any, error) { return nil, tc.err })
		_, err := h(nil, context.Background(), dec, nil)
		if got := status.Code(err); got != tc.want {
			t.Errorf("%s: %v (%v), want %v", tc.name, got, err, tc.want)
		}
	}
	badDec := func(any) error { return errors.New("bad request") }
	h := handler("Status", func(context.Context) (any, error) { return Status{}, nil })
	if _, err := h(nil, context.Background(), badDec, nil); status.Code(err) != codes.Internal {
		t.Errorf("an undecodable request: %v", err)
	}
	resp, err := h(nil, context.Background(), dec, nil)
	if _, ok := resp.(*structpb.Struct); err != nil || !ok {
		t.Errorf("a good call: %T, %v", resp, err)
	}
}
