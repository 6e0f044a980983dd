// Package plugin tests the real localdisk binary end to end with real
// mounts: restarts (SIGTERM and SIGKILL) and the node service's handling of
// read-only, conflicting, repeated and hostile publishes.
package plugin

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/localdisk-csi/localdisk/test/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

const mib = 1 << 20

// env is a plugin serving a ROOT pool in a temp dir, a PATH pool on a loop
// ext4 disk and a MOUNT pool of two loop ext4 disks.
type env struct {
	t     *testing.T
	dir   string
	data  string // the PATH pool's disk
	disks []string
	p     *testutil.Plugin
}

func newEnv(t *testing.T) *env {
	testutil.RequireRoot(t)
	dir := testutil.ShortTempDir(t)
	e := &env{t: t, dir: dir}
	data := testutil.LoopDisk(t, dir, 64, "ext4")
	e.data = data
	for range 2 {
		e.disks = append(e.disks, testutil.LoopDisk(t, dir, 32, "ext4"))
	}
	cfg := fmt.Sprintf(`pools:
- name: root
  kind: root
  path: %s/root
  capacity: 1Gi
- name: data
  kind: path
  path: %s
  capacity: 40Mi
- name: disks
  kind: mount
  disks:
  - path: %s
  - path: %s
`, dir, data, e.disks[0], e.disks[1])
	e.p = testutil.StartPlugin(t, testutil.BuildPlugin(t), testutil.PluginOptions{
		Endpoint:   filepath.Join(dir, "csi.sock"),
		NodeID:     "node-1",
		StateDir:   filepath.Join(dir, "state"),
		ConfigPath: testutil.WriteConfig(t, dir, cfg),
	})
	return e
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func mountCap(mode csi.VolumeCapability_AccessMode_Mode) *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: mode},
	}
}

var rwo = mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER)

func (e *env) create(name string, size int64, params map[string]string) *csi.Volume {
	e.t.Helper()
	r, err := e.p.Controller().CreateVolume(ctx(e.t), &csi.CreateVolumeRequest{
		Name: name, Parameters: params, VolumeCapabilities: []*csi.VolumeCapability{rwo},
		CapacityRange: &csi.CapacityRange{RequiredBytes: size},
	})
	if err != nil {
		e.t.Fatalf("CreateVolume %s: %v", name, err)
	}
	return r.GetVolume()
}

// paths are a volume's staging and target paths, Mesos style: the staging
// dir exists, the target's parent exists.
func (e *env) paths(id string) (staging, target string) {
	base := filepath.Join(e.dir, "mounts", id)
	staging = filepath.Join(base, "staging")
	if err := os.MkdirAll(staging, 0o750); err != nil {
		e.t.Fatal(err)
	}
	return staging, filepath.Join(base, "target")
}

// write writes a file into a staged volume as a task would: through a
// writable publish at a scratch target, unpublished again (a ROOT or PATH
// volume's staging path shows nothing of it).
func (e *env) write(id, staging, name string, data []byte) {
	e.t.Helper()
	scratch := filepath.Join(e.dir, "mounts", id, "scratch")
	e.must(e.publish(id, staging, scratch, false, rwo))
	e.must(os.WriteFile(filepath.Join(scratch, name), data, 0o644))
	e.must(e.unpublish(id, scratch))
}

func (e *env) stage(id, staging string) error {
	_, err := e.p.Node().NodeStageVolume(ctx(e.t), &csi.NodeStageVolumeRequest{
		VolumeId: id, StagingTargetPath: staging, VolumeCapability: rwo})
	return err
}

func (e *env) publish(id, staging, target string, ro bool, c *csi.VolumeCapability) error {
	_, err := e.p.Node().NodePublishVolume(ctx(e.t), &csi.NodePublishVolumeRequest{
		VolumeId: id, StagingTargetPath: staging, TargetPath: target, VolumeCapability: c, Readonly: ro})
	return err
}

func (e *env) unpublish(id, target string) error {
	_, err := e.p.Node().NodeUnpublishVolume(ctx(e.t), &csi.NodeUnpublishVolumeRequest{VolumeId: id, TargetPath: target})
	return err
}

func (e *env) unstage(id, staging string) error {
	_, err := e.p.Node().NodeUnstageVolume(ctx(e.t), &csi.NodeUnstageVolumeRequest{VolumeId: id, StagingTargetPath: staging})
	return err
}

func (e *env) delete(id string) error {
	_, err := e.p.Controller().DeleteVolume(ctx(e.t), &csi.DeleteVolumeRequest{VolumeId: id})
	return err
}

func (e *env) must(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

func wantCode(t *testing.T, err error, want codes.Code, what string) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Errorf("%s: code %s (%v), want %s", what, got, err, want)
	}
}

func (e *env) list() []*csi.ListVolumesResponse_Entry {
	e.t.Helper()
	r, err := e.p.Controller().ListVolumes(ctx(e.t), &csi.ListVolumesRequest{})
	if err != nil {
		e.t.Fatal(err)
	}
	return r.GetEntries()
}

// freeAddr is a loopback address with a free port, for --metrics-address.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// scrape returns what the plugin's /metrics at addr serves.
func scrape(t *testing.T, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}
