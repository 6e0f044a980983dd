package node

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/localdisk-csi/localdisk/driver/mounter"
	"github.com/localdisk-csi/localdisk/driver/mounter/fakemounter"
	"github.com/localdisk-csi/localdisk/driver/mounts"
	"github.com/localdisk-csi/localdisk/driver/pool"
	"github.com/localdisk-csi/localdisk/driver/volume"
	"github.com/localdisk-csi/localdisk/driver/volume/volumetest"
)

// The tests of this package run without root: the volumes live in a ROOT
// pool in a temp dir, and every mount is made in fakemounter's table.

// env is a node service over a ROOT pool with one ready volume (id), and a
// directory co where the tests put their staging and target paths.
type env struct {
	s    *Server
	fake *fakemounter.Mounter
	vols *volume.Manager
	dir  string // canonical temp dir: root/ is the pool, state/ the state
	co   string
	id   string
	vol  *volume.Volume
}

func newEnv(t *testing.T) *env {
	t.Helper()
	dir, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	vols := volumetest.RootManager(t, dir, 1<<30)
	v, err := vols.Create(context.Background(), volume.CreateRequest{Name: "v1", Required: 8 * pool.MiB})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{fake: fakemounter.New(), vols: vols, dir: dir, co: filepath.Join(dir, "co"), id: v.ID, vol: v}
	if err := os.Mkdir(e.co, 0o755); err != nil {
		t.Fatal(err)
	}
	e.s = &Server{Mounts: mounts.New(vols, e.fake), Volumes: vols, NodeID: "n1", TopologyKey: "topology.localdisk/node"}
	return e
}

// create makes another ready volume.
func (e *env) create(t *testing.T, name string) *volume.Volume {
	t.Helper()
	v, err := e.vols.Create(context.Background(), volume.CreateRequest{Name: name, Required: pool.MiB})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func (e *env) path(name string) string { return filepath.Join(e.co, name) }

func mountCap(mode csi.VolumeCapability_AccessMode_Mode) *csi.VolumeCapability {
	return &csi.VolumeCapability{AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: mode}}
}

func blockCap() *csi.VolumeCapability {
	return &csi.VolumeCapability{AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER}}
}

var rw = mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER)

func (e *env) stage(id, staging string, c *csi.VolumeCapability) error {
	_, err := e.s.NodeStageVolume(context.Background(), &csi.NodeStageVolumeRequest{VolumeId: id, StagingTargetPath: staging, VolumeCapability: c})
	return err
}

func (e *env) publish(id, staging, target string, c *csi.VolumeCapability, ro bool) error {
	_, err := e.s.NodePublishVolume(context.Background(), &csi.NodePublishVolumeRequest{VolumeId: id,
		StagingTargetPath: staging, TargetPath: target, VolumeCapability: c, Readonly: ro})
	return err
}

func (e *env) unpublish(id, target string) error {
	_, err := e.s.NodeUnpublishVolume(context.Background(), &csi.NodeUnpublishVolumeRequest{VolumeId: id, TargetPath: target})
	return err
}

func (e *env) unstage(id, staging string) error {
	_, err := e.s.NodeUnstageVolume(context.Background(), &csi.NodeUnstageVolumeRequest{VolumeId: id, StagingTargetPath: staging})
	return err
}

// staged stages the env's volume at co/staging and returns that path.
func (e *env) staged(t *testing.T) string {
	t.Helper()
	staging := e.path("staging")
	if err := e.stage(e.id, staging, rw); err != nil {
		t.Fatalf("NodeStageVolume: %v", err)
	}
	return staging
}

// at is the topmost mount at p in the fake's table, nil if none.
func (e *env) at(t *testing.T, p string) *mounter.Source {
	t.Helper()
	tb, err := e.fake.ReadTable()
	if err != nil {
		t.Fatal(err)
	}
	m := tb.At(p)
	if m == nil {
		return nil
	}
	src := mounter.SourceOf(m)
	return &src
}

// volumeSource is what a mount of the env's volume shows in the fake.
func (e *env) volumeSource() mounter.Source {
	return mounter.Source{Major: fakemounter.RootSource.Major, Minor: fakemounter.RootSource.Minor, Root: e.vol.Path()}
}

// foreign is what a mount of something else shows.
var foreign = mounter.Source{Major: 0, Minor: 99, Root: "/elsewhere"}

func wantCode(t *testing.T, what string, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Errorf("%s: code %v (%v), want %v", what, got, err, want)
	}
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}
