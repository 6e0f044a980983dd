package node

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
)

func TestNodeStageVolume_ForeignMount(t *testing.T) {
	e := newEnv(t)
	staging := e.path("staging")
	os.Mkdir(staging, 0o750)
	e.fake.Mount(foreign, staging, false)
	wantCode(t, "stage where something else is mounted", e.stage(e.id, staging, rw), codes.FailedPrecondition)
	if len(e.fake.Binds()) != 0 {
		t.Errorf("binds: %+v, want none", e.fake.Binds())
	}
}

func TestNodePublishVolume_ForeignMount(t *testing.T) {
	e := newEnv(t)
	staging, target := e.staged(t), e.path("target")
	os.Mkdir(target, 0o750)
	e.fake.Mount(foreign, target, false)
	wantCode(t, "publish where something else is mounted", e.publish(e.id, staging, target, rw, false), codes.FailedPrecondition)
	if *e.at(t, target) != foreign {
		t.Errorf("the foreign mount was mounted over")
	}
}

// A CO mixing up its paths never takes another volume from its pod.
func TestNodeUnpublishVolume_AnotherVolumesMount(t *testing.T) {
	e := newEnv(t)
	staging, target := e.staged(t), e.path("target")
	if err := e.publish(e.id, staging, target, rw, false); err != nil {
		t.Fatal(err)
	}
	other := e.create(t, "v2")
	wantCode(t, "unpublish of v2 at v1's target", e.unpublish(other.ID, target), codes.FailedPrecondition)
	// v2 is not staged at v1's staging path: there is nothing to undo.
	wantCode(t, "unstage of v2 at v1's staging", e.unstage(other.ID, staging), codes.OK)
	if len(e.fake.Unmounts()) != 0 || !exists(target) {
		t.Errorf("unmounts %q: v1's mounts were touched", e.fake.Unmounts())
	}
	if !e.vols.Staging().Has(e.id, staging) {
		t.Errorf("v1 is no longer recorded staged at %s", staging)
	}
}

func TestNodeUnpublishVolume_TargetHoldsData(t *testing.T) {
	for _, tc := range []struct {
		name     string
		make     func(p string) error
		wantCode codes.Code
		kept     bool
	}{
		{"a directory holding a file is kept", func(p string) error {
			if err := os.Mkdir(p, 0o750); err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(p, "data"), []byte("x"), 0o600)
		}, codes.FailedPrecondition, true},
		{"a file holding data is kept", func(p string) error { return os.WriteFile(p, []byte("x"), 0o600) }, codes.FailedPrecondition, true},
		{"an empty directory is removed", func(p string) error { return os.Mkdir(p, 0o750) }, codes.OK, false},
		{"an empty file (a block target) is removed", func(p string) error { return os.WriteFile(p, nil, 0o600) }, codes.OK, false},
		{"a symlink is removed, not followed", func(p string) error { return os.Symlink("/", p) }, codes.OK, false},
		{"a missing target is done", func(string) error { return nil }, codes.OK, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			target := e.path("target")
			if err := tc.make(target); err != nil {
				t.Fatal(err)
			}
			wantCode(t, "unpublish", e.unpublish(e.id, target), tc.wantCode)
			if exists(target) != tc.kept {
				t.Errorf("target exists: %v, want %v", exists(target), tc.kept)
			}
		})
	}
}

func TestNodePublishVolume_TargetNotADirectory(t *testing.T) {
	e := newEnv(t)
	staging, target := e.staged(t), e.path("target")
	if err := os.WriteFile(target, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "publish at a file", e.publish(e.id, staging, target, rw, false), codes.FailedPrecondition)
	if err := os.Remove(target); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(e.path("elsewhere"), target); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "publish at a symlink", e.publish(e.id, staging, target, rw, false), codes.FailedPrecondition)
	if exists(e.path("elsewhere")) {
		t.Errorf("the symlink was followed")
	}
}

func TestNode_BadPaths(t *testing.T) {
	e := newEnv(t)
	staging := e.staged(t)
	for _, tc := range []struct{ name, path string }{
		{"a relative path", "co/target"},
		{"a NUL byte", e.path("t\x00")},
		{"longer than PATH_MAX", "/" + strings.Repeat("a/", 2100)},
		{"a name longer than NAME_MAX", e.path(strings.Repeat("n", 256))},
		{"a parent that is a file", filepath.Join(e.dir, "state", "volumes", e.id+".json", "x")},
		{"inside the state directory", filepath.Join(e.dir, "state", "t")},
		{"the ROOT pool's root", filepath.Join(e.dir, "root")},
		{"inside the ROOT pool's data", filepath.Join(e.dir, "root", "localdisk", "t")},
		{"the volume's own directory", e.vol.Path()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, "stage", e.stage(e.id, tc.path, rw), codes.InvalidArgument)
			wantCode(t, "publish at it", e.publish(e.id, staging, tc.path, rw, false), codes.InvalidArgument)
			wantCode(t, "publish from it", e.publish(e.id, tc.path, e.path("target"), rw, false), codes.InvalidArgument)
			wantCode(t, "unpublish", e.unpublish(e.id, tc.path), codes.InvalidArgument)
			wantCode(t, "unstage", e.unstage(e.id, tc.path), codes.InvalidArgument)
		})
	}
	if len(e.fake.Binds()) != 0 || len(e.fake.Unmounts()) != 0 {
		t.Errorf("binds %+v, unmounts %q: a bad path reached the mounter", e.fake.Binds(), e.fake.Unmounts())
	}
}

// A path whose parent is gone has nothing mounted: unpublish and unstage
// are done.
func TestNode_UnmountWhereParentIsGone(t *testing.T) {
	e := newEnv(t)
	p := e.path("gone/target")
	if err := e.unpublish(e.id, p); err != nil {
		t.Errorf("unpublish: %v", err)
	}
	if err := e.unstage(e.id, p); err != nil {
		t.Errorf("unstage: %v", err)
	}
}

func TestNode_MissingFields(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"stage without volume_id", func() error { return e.stage("", e.path("s"), rw) }},
		{"stage without staging_target_path", func() error { return e.stage(e.id, "", rw) }},
		{"stage without volume_capability", func() error { return e.stage(e.id, e.path("s"), nil) }},
		{"publish without volume_id", func() error { return e.publish("", e.path("s"), e.path("t"), rw, false) }},
		{"publish without target_path", func() error { return e.publish(e.id, e.path("s"), "", rw, false) }},
		{"publish without volume_capability", func() error { return e.publish(e.id, e.path("s"), e.path("t"), nil, false) }},
		{"unpublish without volume_id", func() error { return e.unpublish("", e.path("t")) }},
		{"unpublish without target_path", func() error { return e.unpublish(e.id, "") }},
		{"unstage without volume_id", func() error { return e.unstage("", e.path("s")) }},
		{"unstage without staging_target_path", func() error { return e.unstage(e.id, "") }},
		{"stats without volume_path", func() error {
			_, err := e.s.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: e.id})
			return err
		}},
		{"expand without volume_id", func() error {
			_, err := e.s.NodeExpandVolume(ctx, &csi.NodeExpandVolumeRequest{VolumePath: e.path("t")})
			return err
		}},
		{"health without volume_id", func() error {
			_, err := e.s.NodeGetVolumeHealth(ctx, &csi.NodeGetVolumeHealthRequest{})
			return err
		}},
	} {
		wantCode(t, tc.name, tc.call(), codes.InvalidArgument)
	}
}

func TestNode_UnsupportedCapability(t *testing.T) {
	e := newEnv(t)
	flags := mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER)
	flags.GetMount().MountFlags = []string{"noatime"}
	for name, c := range map[string]*csi.VolumeCapability{
		"mount flags":          flags,
		"a multi-node mode":    mountCap(csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER),
		"no access mode":       mountCap(csi.VolumeCapability_AccessMode_UNKNOWN),
		"no access type":       {AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER}},
		"an unknown mode (42)": mountCap(42),
	} {
		wantCode(t, "stage with "+name, e.stage(e.id, e.path("s"), c), codes.InvalidArgument)
		wantCode(t, "publish with "+name, e.publish(e.id, e.path("s"), e.path("t"), c, false), codes.InvalidArgument)
	}
}
