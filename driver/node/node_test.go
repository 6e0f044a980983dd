package node

import (
	"context"
	"os"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"

	"github.com/localdisk-csi/localdisk/driver/mounter/fakemounter"
	"github.com/localdisk-csi/localdisk/driver/volume"
)

func TestNodeStageVolume_Replay(t *testing.T) {
	e := newEnv(t)
	staging := e.path("staging")
	for i := range 3 {
		if err := e.stage(e.id, staging, rw); err != nil {
			t.Fatalf("stage #%d: %v", i+1, err)
		}
	}
	// A ROOT or PATH volume is staged without a mount: its staging record
	// says where, once.
	if b := e.fake.Binds(); len(b) != 0 {
		t.Errorf("binds after three stages: %+v, want none", b)
	}
	if !e.vols.Staging().Has(e.id, staging) || !exists(staging) {
		t.Errorf("after three stages: recorded %v, %s exists %v", e.vols.Staging().Has(e.id, staging), staging, exists(staging))
	}
	if p, ok := e.vols.Staging().Staged(e.id); !ok || p != staging {
		t.Errorf("Staged: %q %v, want %s", p, ok, staging)
	}
}

func TestNodePublishVolume_Replay(t *testing.T) {
	for _, tc := range []struct {
		name   string
		c      *csi.VolumeCapability
		ro     bool
		wantRO bool
	}{
		{"a writable publish is writable", rw, false, false},
		{"readonly=true makes it read-only", rw, true, true},
		{"a reader-only access mode makes it read-only", mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY), false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			staging, target := e.staged(t), e.path("target")
			for i := range 3 {
				if err := e.publish(e.id, staging, target, tc.c, tc.ro); err != nil {
					t.Fatalf("publish #%d: %v", i+1, err)
				}
			}
			b := e.fake.Binds()
			if len(b) != 1 || b[0].Target != target || b[0].Source != e.volumeSource() || b[0].ReadOnly != tc.wantRO {
				t.Errorf("binds: %+v, want one of %v at %s with ro=%v", b, e.volumeSource(), target, tc.wantRO)
			}
		})
	}
}

func TestNodeUnpublishVolume_Replay(t *testing.T) {
	e := newEnv(t)
	staging, target := e.staged(t), e.path("target")
	if err := e.publish(e.id, staging, target, rw, false); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := e.unpublish(e.id, target); err != nil {
			t.Fatalf("unpublish #%d: %v", i+1, err)
		}
	}
	if exists(target) {
		t.Errorf("%s is still there", target)
	}
	if u := e.fake.Unmounts(); len(u) != 1 || u[0] != target {
		t.Errorf("unmounts: %q, want one at %s", u, target)
	}
	if !e.vols.Staging().Has(e.id, staging) {
		t.Errorf("unpublish unstaged the volume too")
	}
}

func TestNodeUnstageVolume_Replay(t *testing.T) {
	e := newEnv(t)
	staging := e.staged(t)
	for i := range 3 {
		if err := e.unstage(e.id, staging); err != nil {
			t.Fatalf("unstage #%d: %v", i+1, err)
		}
	}
	if !exists(staging) {
		t.Errorf("unstage removed %s: the CO owns it", staging)
	}
	if u := e.fake.Unmounts(); len(u) != 0 {
		t.Errorf("unmounts: %q, want none: nothing was mounted", u)
	}
	if _, ok := e.vols.Staging().Staged(e.id); ok {
		t.Errorf("the volume is still recorded staged")
	}
	if err := e.stage(e.id, staging, rw); err != nil {
		t.Errorf("stage after unstage: %v", err)
	}
}

// The cycle gives the same answers without the fast paths, from the mount
// table alone (a kernel without statx).
func TestNode_WithoutFastPaths(t *testing.T) {
	e := newEnv(t)
	e.fake.Unsure(true)
	staging, target := e.path("staging"), e.path("target")
	steps := []struct {
		name string
		call func() error
	}{
		{"stage", func() error { return e.stage(e.id, staging, rw) }},
		{"stage again", func() error { return e.stage(e.id, staging, rw) }},
		{"publish", func() error { return e.publish(e.id, staging, target, rw, true) }},
		{"publish again", func() error { return e.publish(e.id, staging, target, rw, true) }},
		{"unpublish", func() error { return e.unpublish(e.id, target) }},
		{"unpublish again", func() error { return e.unpublish(e.id, target) }},
		{"unstage", func() error { return e.unstage(e.id, staging) }},
		{"unstage again", func() error { return e.unstage(e.id, staging) }},
	}
	for _, s := range steps {
		if err := s.call(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
	}
	if b, u := e.fake.Binds(), e.fake.Unmounts(); len(b) != 1 || len(u) != 1 {
		t.Errorf("binds %+v and unmounts %q: want one of each (publish, unpublish)", b, u)
	}
}

func TestNodePublishVolume_NotStaged(t *testing.T) {
	e := newEnv(t)
	staging, target := e.path("staging"), e.path("target")
	os.Mkdir(staging, 0o750)
	wantCode(t, "publish of a volume never staged", e.publish(e.id, staging, target, rw, false), codes.FailedPrecondition)
	other := e.create(t, "v2")
	if err := e.stage(other.ID, staging, rw); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "publish from another volume's staging", e.publish(e.id, staging, target, rw, false), codes.FailedPrecondition)
	if exists(target) {
		t.Errorf("a failed publish made %s", target)
	}
}

func TestNodePublishVolume_StagingPathMissing(t *testing.T) {
	e := newEnv(t)
	wantCode(t, "publish without staging_target_path", e.publish(e.id, "", e.path("target"), rw, false), codes.FailedPrecondition)
}

func TestNodePublishVolume_ReadOnlyMismatch(t *testing.T) {
	e := newEnv(t)
	staging, target := e.staged(t), e.path("target")
	if err := e.publish(e.id, staging, target, rw, false); err != nil {
		t.Fatal(err)
	}
	wantCode(t, "read-only publish where it is writable", e.publish(e.id, staging, target, rw, true), codes.AlreadyExists)
	wantCode(t, "reader-only mode where it is writable",
		e.publish(e.id, staging, target, mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY), false), codes.AlreadyExists)
	if b := e.fake.Binds(); len(b) != 1 {
		t.Errorf("binds: %+v, want no second one", b)
	}
}

func TestNodePublishVolume_SingleWriter(t *testing.T) {
	e := newEnv(t)
	staging := e.staged(t)
	ssw := mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER)
	if err := e.publish(e.id, staging, e.path("t1"), ssw, false); err != nil {
		t.Fatal(err)
	}
	if err := e.publish(e.id, staging, e.path("t1"), ssw, false); err != nil {
		t.Errorf("the same publish again: %v", err)
	}
	wantCode(t, "a single writer at a second target", e.publish(e.id, staging, e.path("t2"), ssw, false), codes.FailedPrecondition)
	if exists(e.path("t2")) {
		t.Errorf("the refused publish made its target")
	}
	smw := mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER)
	if err := e.publish(e.id, staging, e.path("t3"), smw, false); err != nil {
		t.Errorf("a multi-writer publish next to it: %v", err)
	}
}

func TestNode_UnknownVolume(t *testing.T) {
	e := newEnv(t)
	staging, target := e.path("staging"), e.path("target")
	wantCode(t, "stage", e.stage("r-unknown", staging, rw), codes.NotFound)
	wantCode(t, "publish", e.publish("r-unknown", staging, target, rw, false), codes.NotFound)
	// Whatever is mounted at a path given with an unknown volume is
	// unmounted as asked: a CO can always clean up.
	for _, p := range []string{staging, target} {
		os.Mkdir(p, 0o750)
		e.fake.Mount(foreign, p, false)
	}
	if err := e.unpublish("r-unknown", target); err != nil {
		t.Errorf("unpublish: %v", err)
	}
	if err := e.unstage("r-unknown", staging); err != nil {
		t.Errorf("unstage: %v", err)
	}
	if e.at(t, target) != nil || e.at(t, staging) != nil || exists(target) {
		t.Errorf("the paths were not cleaned up")
	}
}

func TestNode_BlockOnDirectoryVolume(t *testing.T) {
	e := newEnv(t)
	wantCode(t, "stage for block access", e.stage(e.id, e.path("staging"), blockCap()), codes.FailedPrecondition)
	staging := e.staged(t)
	wantCode(t, "publish for block access", e.publish(e.id, staging, e.path("target"), blockCap(), false), codes.FailedPrecondition)
	if exists(e.path("target")) {
		t.Errorf("the refused publish made its target")
	}
}

func TestNode_Busy(t *testing.T) {
	e := newEnv(t)
	unlock, err := e.vols.Lock(context.Background(), volume.IDKey(e.id))
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = e.s.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: e.id, StagingTargetPath: e.path("staging"), VolumeCapability: rw})
	wantCode(t, "stage while another call holds the volume", err, codes.Aborted)
}

// Failures of the node itself are INTERNAL, and leave nothing mounted.
func TestNode_MounterFails(t *testing.T) {
	e := newEnv(t)
	staging, target := e.staged(t), e.path("target")
	e.fake.Fail(fakemounter.OpBind, os.ErrPermission)
	wantCode(t, "publish when the bind fails", e.publish(e.id, staging, target, rw, false), codes.Internal)
	e.fake.Fail(fakemounter.OpBind, nil)
	if e.at(t, target) != nil {
		t.Errorf("a failed publish left a mount")
	}
	e.fake.Unsure(true) // the mount table is needed
	e.fake.Fail(fakemounter.OpReadTable, os.ErrClosed)
	wantCode(t, "publish when the table cannot be read", e.publish(e.id, staging, target, rw, false), codes.Internal)
	e.fake.Fail(fakemounter.OpReadTable, nil)
	e.fake.Unsure(false)
	if err := e.publish(e.id, staging, target, rw, false); err != nil {
		t.Fatal(err)
	}
	e.fake.Fail(fakemounter.OpUnmount, os.ErrPermission)
	wantCode(t, "unpublish when the unmount fails", e.unpublish(e.id, target), codes.Internal)
	if e.at(t, target) == nil {
		t.Errorf("the target's mount is gone")
	}
}
