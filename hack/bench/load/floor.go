package load

import (
	"context"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
)

// RPCFloor is the one-bind limit (a Limit with OneBind) plus one null CSI
// call to the plugin per step: NodeGetCapabilities, which the plugin
// answers from constants through its whole interceptor chain (logging,
// metrics). Six steps, six round trips, as a CO makes them. It is the least
// any plugin that speaks gRPC can do for the cycle on this machine: the
// physical work plus the transport, with nothing of the plugin's own work.
type RPCFloor struct {
	Limit *Limit
	node  csi.NodeClient
}

// NewRPCFloor is the floor of lim (OneBind) over conn.
func NewRPCFloor(lim *Limit, conn grpc.ClientConnInterface) *RPCFloor {
	return &RPCFloor{Limit: lim, node: csi.NewNodeClient(conn)}
}

var _ Backend = (*RPCFloor)(nil)

func (f *RPCFloor) null(ctx context.Context) error {
	_, err := f.node.NodeGetCapabilities(ctx, &csi.NodeGetCapabilitiesRequest{})
	return err
}

// Create is a null call, then the limit's create.
func (f *RPCFloor) Create(ctx context.Context, name string) (Vol, error) {
	if err := f.null(ctx); err != nil {
		return Vol{}, err
	}
	return f.Limit.Create(ctx, name)
}

// Stage is a null call, then the limit's stage.
func (f *RPCFloor) Stage(ctx context.Context, v Vol, staging string) error {
	return first(f.null(ctx), func() error { return f.Limit.Stage(ctx, v, staging) })
}

// Publish is a null call, then the limit's publish.
func (f *RPCFloor) Publish(ctx context.Context, v Vol, staging, target string, ro bool) error {
	return first(f.null(ctx), func() error { return f.Limit.Publish(ctx, v, staging, target, ro) })
}

// Unpublish is a null call, then the limit's unpublish.
func (f *RPCFloor) Unpublish(ctx context.Context, v Vol, target string) error {
	return first(f.null(ctx), func() error { return f.Limit.Unpublish(ctx, v, target) })
}

// Unstage is a null call, then the limit's unstage.
func (f *RPCFloor) Unstage(ctx context.Context, v Vol, staging string) error {
	return first(f.null(ctx), func() error { return f.Limit.Unstage(ctx, v, staging) })
}

// Delete is a null call, then the limit's delete.
func (f *RPCFloor) Delete(ctx context.Context, v Vol) error {
	return first(f.null(ctx), func() error { return f.Limit.Delete(ctx, v) })
}

func first(err error, then func() error) error {
	if err != nil {
		return err
	}
	return then()
}
