package mesos

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// rpcTimeout is the deadline Mesos gives every CSI call.
const rpcTimeout = 60 * time.Second

func rpcContext() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), rpcTimeout)
}

// mountCap is a mount capability with the access mode, as in a Mesos disk
// profile; snw is the usual one.
func mountCap(mode csi.VolumeCapability_AccessMode_Mode) *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: mode},
	}
}

var (
	snw = mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER)
	sro = mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY)
)

func blockCap() *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
	}
}

// create is Mesos's CREATE_DISK: name, required == limit == size, one
// capability, the profile's parameters.
func (a *agent) create(name string, size int64, params map[string]string) (*csi.Volume, error) {
	ctx, cancel := rpcContext()
	defer cancel()
	resp, err := a.p.Controller().CreateVolume(ctx, &csi.CreateVolumeRequest{
		Name:               name,
		CapacityRange:      &csi.CapacityRange{RequiredBytes: size, LimitBytes: size},
		VolumeCapabilities: []*csi.VolumeCapability{snw},
		Parameters:         params,
	})
	return resp.GetVolume(), err
}

// mustCreate is create that fails the test unless the volume is made with
// exactly the size asked for.
func (a *agent) mustCreate(name string, size int64, params map[string]string) *csi.Volume {
	a.t.Helper()
	v, err := a.create(name, size, params)
	if err != nil {
		a.t.Fatalf("CreateVolume(%s, %d bytes, %v): %v", name, size, params, err)
	}
	if v.GetCapacityBytes() != size {
		a.t.Fatalf("CreateVolume(%s, %d bytes) made %d bytes", name, size, v.GetCapacityBytes())
	}
	return v
}

func (a *agent) delete(id string) error {
	ctx, cancel := rpcContext()
	defer cancel()
	_, err := a.p.Controller().DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: id})
	return err
}

// listRaw is Mesos's ListVolumes: no max_entries, no token.
func (a *agent) listRaw() *csi.ListVolumesResponse {
	a.t.Helper()
	ctx, cancel := rpcContext()
	defer cancel()
	resp, err := a.p.Controller().ListVolumes(ctx, &csi.ListVolumesRequest{})
	if err != nil {
		a.t.Fatalf("ListVolumes: %v", err)
	}
	return resp
}

// list is ListVolumes by volume ID; it fails the test on a second page or
// a duplicate, which Mesos would drop.
func (a *agent) list() map[string]*csi.Volume {
	a.t.Helper()
	resp := a.listRaw()
	if resp.GetNextToken() != "" {
		a.t.Fatalf("ListVolumes{} returned next_token %q: Mesos reads one page only", resp.GetNextToken())
	}
	out := map[string]*csi.Volume{}
	for _, e := range resp.GetEntries() {
		id := e.GetVolume().GetVolumeId()
		if _, dup := out[id]; dup {
			a.t.Fatalf("ListVolumes lists %s twice", id)
		}
		out[id] = e.GetVolume()
	}
	return out
}

// capacity is Mesos's GetCapacity for one profile: one capability, the
// parameters, no topology.
func (a *agent) capacity(c *csi.VolumeCapability, params map[string]string) (int64, error) {
	ctx, cancel := rpcContext()
	defer cancel()
	resp, err := a.p.Controller().GetCapacity(ctx, &csi.GetCapacityRequest{
		VolumeCapabilities: []*csi.VolumeCapability{c},
		Parameters:         params,
	})
	return resp.GetAvailableCapacity(), err
}

func (a *agent) mustCapacity(params map[string]string) int64 {
	a.t.Helper()
	n, err := a.capacity(snw, params)
	if err != nil {
		a.t.Fatalf("GetCapacity(%v): %v", params, err)
	}
	return n
}

func (a *agent) validate(id string, vctx map[string]string, c *csi.VolumeCapability, params map[string]string) (*csi.ValidateVolumeCapabilitiesResponse, error) {
	ctx, cancel := rpcContext()
	defer cancel()
	return a.p.Controller().ValidateVolumeCapabilities(ctx, &csi.ValidateVolumeCapabilitiesRequest{
		VolumeId:           id,
		VolumeContext:      vctx,
		VolumeCapabilities: []*csi.VolumeCapability{c},
		Parameters:         params,
	})
}

// stage is Mesos's NodeStageVolume: it creates the staging directory
// (and its parents), then calls the plugin.
func (a *agent) stage(id string, vctx map[string]string, c *csi.VolumeCapability) error {
	if err := os.MkdirAll(a.staging(id), 0o755); err != nil {
		return err
	}
	ctx, cancel := rpcContext()
	defer cancel()
	_, err := a.p.Node().NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{
		VolumeId: id, StagingTargetPath: a.staging(id), VolumeCapability: c, VolumeContext: vctx,
	})
	return err
}

// publish is Mesos's NodePublishVolume: it creates only the parent of the
// target, calls the plugin, and fails unless the target then exists.
func (a *agent) publish(id string, vctx map[string]string, c *csi.VolumeCapability, readonly bool) error {
	if err := os.MkdirAll(filepath.Dir(a.target(id)), 0o755); err != nil {
		return err
	}
	ctx, cancel := rpcContext()
	defer cancel()
	_, err := a.p.Node().NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{
		VolumeId: id, StagingTargetPath: a.staging(id), TargetPath: a.target(id),
		VolumeCapability: c, Readonly: readonly, VolumeContext: vctx,
	})
	if err != nil {
		return err
	}
	if _, err := os.Stat(a.target(id)); err != nil {
		return errors.New("target path not created: " + err.Error())
	}
	return nil
}

// unpublish is Mesos's NodeUnpublishVolume: it fails if the target still
// exists afterwards.
func (a *agent) unpublish(id string) error {
	ctx, cancel := rpcContext()
	defer cancel()
	if _, err := a.p.Node().NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{
		VolumeId: id, TargetPath: a.target(id),
	}); err != nil {
		return err
	}
	if _, err := os.Lstat(a.target(id)); err == nil {
		return errors.New("target path " + a.target(id) + " not removed")
	}
	return nil
}

// unstage is Mesos's NodeUnstageVolume, which it calls only while the
// staging directory exists.
func (a *agent) unstage(id string) error {
	if _, err := os.Stat(a.staging(id)); err != nil {
		return err
	}
	ctx, cancel := rpcContext()
	defer cancel()
	_, err := a.p.Node().NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{
		VolumeId: id, StagingTargetPath: a.staging(id),
	})
	return err
}

// mustMount stages and publishes (read-write) or fails the test.
func (a *agent) mustMount(id string, vctx map[string]string) {
	a.t.Helper()
	if err := a.stage(id, vctx, snw); err != nil {
		a.t.Fatalf("NodeStageVolume(%s): %v", id, err)
	}
	if err := a.publish(id, vctx, snw, false); err != nil {
		a.t.Fatalf("NodePublishVolume(%s): %v", id, err)
	}
}

// mustUnmount unpublishes and unstages or fails the test.
func (a *agent) mustUnmount(id string) {
	a.t.Helper()
	if err := a.unpublish(id); err != nil {
		a.t.Fatalf("NodeUnpublishVolume(%s): %v", id, err)
	}
	if err := a.unstage(id); err != nil {
		a.t.Fatalf("NodeUnstageVolume(%s): %v", id, err)
	}
}

// removeMountPath is what Mesos does once a volume is unpublished and
// unstaged: it removes mounts/<id> recursively, crossing mount points. The
// test refuses to delete through a mount (that would destroy volume data)
// and fails instead.
func (a *agent) removeMountPath(id string) {
	a.t.Helper()
	if left := mountsBelow(a.t, a.mountPath(id)); len(left) > 0 {
		a.t.Fatalf("still mounted under %s after unpublish and unstage: %q (Mesos would now delete the data)", a.mountPath(id), left)
	}
	if err := os.RemoveAll(a.mountPath(id)); err != nil {
		a.t.Fatal(err)
	}
}

// codeOf is the gRPC code of an error.
func codeOf(err error) codes.Code { return status.Code(err) }

// wantCode fails the test unless err has one of the codes.
func wantCode(t *testing.T, what string, err error, want ...codes.Code) {
	t.Helper()
	got := codeOf(err)
	for _, w := range want {
		if got == w {
			return
		}
	}
	t.Errorf("%s: code %v (%v), want one of %v", what, got, err, want)
}

// notRetried fails the test if err has a code that Mesos retries forever.
func notRetried(t *testing.T, what string, err error) {
	t.Helper()
	if c := codeOf(err); c == codes.Unavailable || c == codes.DeadlineExceeded {
		t.Errorf("%s: code %v for a permanent condition: Mesos retries it forever (%v)", what, c, err)
	}
}
