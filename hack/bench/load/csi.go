package load

import (
	"context"
	"strings"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// Dial connects to a CSI endpoint, unix:///PATH or a plain absolute path,
// allowing large answers (ListVolumes of many volumes in one page).
func Dial(endpoint string) (*grpc.ClientConn, error) {
	if strings.HasPrefix(endpoint, "/") {
		endpoint = "unix://" + endpoint
	}
	return grpc.NewClient(endpoint,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(256<<20)))
}

// Probe calls Probe once on a new connection.
func Probe(endpoint string, timeout time.Duration) error {
	conn, err := Dial(endpoint)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	_, err = csi.NewIdentityClient(conn).Probe(ctx, &csi.ProbeRequest{})
	return err
}

// MountCapability is the capability a CO asks for a filesystem volume
// written by one node.
func MountCapability() *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
	}
}

// Plugin drives a running localdisk over CSI the way Mesos and Kubernetes
// do: CreateVolume with required == limit and one capability, then stage,
// publish, unpublish, unstage, delete, passing the volume context along.
type Plugin struct {
	Controller csi.ControllerClient
	Node       csi.NodeClient
	// Params are the CreateVolume parameters (e.g. pool=NAME).
	Params map[string]string
	// Size is required_bytes and limit_bytes.
	Size int64
}

var _ Backend = (*Plugin)(nil)

// NewPlugin makes a Plugin backend on conn.
func NewPlugin(conn grpc.ClientConnInterface, params map[string]string, size int64) *Plugin {
	return &Plugin{Controller: csi.NewControllerClient(conn), Node: csi.NewNodeClient(conn), Params: params, Size: size}
}

// Create calls CreateVolume.
func (p *Plugin) Create(ctx context.Context, name string) (Vol, error) {
	resp, err := p.Controller.CreateVolume(ctx, &csi.CreateVolumeRequest{
		Name:               name,
		CapacityRange:      &csi.CapacityRange{RequiredBytes: p.Size, LimitBytes: p.Size},
		VolumeCapabilities: []*csi.VolumeCapability{MountCapability()},
		Parameters:         p.Params,
	})
	if err != nil {
		return Vol{}, err
	}
	return Vol{ID: resp.GetVolume().GetVolumeId(), Context: resp.GetVolume().GetVolumeContext()}, nil
}

// Stage calls NodeStageVolume.
func (p *Plugin) Stage(ctx context.Context, v Vol, staging string) error {
	_, err := p.Node.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{
		VolumeId: v.ID, StagingTargetPath: staging, VolumeCapability: MountCapability(), VolumeContext: v.Context,
	})
	return err
}

// Publish calls NodePublishVolume.
func (p *Plugin) Publish(ctx context.Context, v Vol, staging, target string, ro bool) error {
	_, err := p.Node.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{
		VolumeId: v.ID, StagingTargetPath: staging, TargetPath: target, Readonly: ro,
		VolumeCapability: MountCapability(), VolumeContext: v.Context,
	})
	return err
}

// Unpublish calls NodeUnpublishVolume.
func (p *Plugin) Unpublish(ctx context.Context, v Vol, target string) error {
	_, err := p.Node.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: v.ID, TargetPath: target})
	return err
}

// Unstage calls NodeUnstageVolume.
func (p *Plugin) Unstage(ctx context.Context, v Vol, staging string) error {
	_, err := p.Node.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: v.ID, StagingTargetPath: staging})
	return err
}

// Delete calls DeleteVolume.
func (p *Plugin) Delete(ctx context.Context, v Vol) error {
	_, err := p.Controller.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: v.ID})
	return err
}
