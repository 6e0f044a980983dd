package node

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"

	"github.com/localdisk-csi/localdisk/driver/mounts"
	"github.com/localdisk-csi/localdisk/driver/volume"
	"github.com/localdisk-csi/localdisk/driver/volume/volumetest"
)

// A ROOT or PATH volume staged without a mount is still in use: its
// staging record refuses DeleteVolume, also after a restart of the plugin,
// until it is unstaged.
func TestStaging_RecordRefusesDeleteAcrossRestarts(t *testing.T) {
	e := newEnv(t)
	staging := e.staged(t)
	ctx := context.Background()
	if err := e.vols.Delete(ctx, e.id); !errors.Is(err, volume.ErrInUse) {
		t.Fatalf("delete of a staged volume: %v, want ErrInUse", err)
	}
	e.vols.Close()
	vols := volumetest.RootManager(t, e.dir, 1<<30) // the plugin restarted
	if p, ok := vols.Staging().Staged(e.id); !ok || p != staging {
		t.Fatalf("after a restart: staged at %q %v, want %s", p, ok, staging)
	}
	if err := vols.Delete(ctx, e.id); !errors.Is(err, volume.ErrInUse) {
		t.Fatalf("delete of a staged volume after a restart: %v, want ErrInUse", err)
	}
	s := &Server{Mounts: mounts.New(vols, e.fake), Volumes: vols, NodeID: "n1", TopologyKey: "topology.localdisk/node"}
	if _, err := s.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: e.id, StagingTargetPath: staging}); err != nil {
		t.Fatal(err)
	}
	if err := vols.Delete(ctx, e.id); err != nil {
		t.Fatalf("delete after unstage: %v", err)
	}
}

// A CO that removed its staging directory before unstaging has unstaged
// the volume in all but name: unstage of the missing path drops the
// record, and so does a delete that finds the path gone.
func TestStaging_StagingPathRemoved(t *testing.T) {
	for _, unstage := range []bool{true, false} {
		e := newEnv(t)
		staging := e.staged(t)
		if err := os.Remove(staging); err != nil {
			t.Fatal(err)
		}
		if unstage {
			if err := e.unstage(e.id, staging); err != nil {
				t.Fatalf("unstage of a removed staging path: %v", err)
			}
			if e.vols.Staging().Has(e.id, staging) {
				t.Errorf("unstage of a removed staging path kept its record")
			}
		}
		if err := e.vols.Delete(context.Background(), e.id); err != nil {
			t.Errorf("delete (unstaged first: %v): %v", unstage, err)
		}
	}
}

// Volumes staged by a mount of their directory, as versions before the
// staging records did, stay staged through an upgrade: a replayed stage
// changes nothing, publish binds the directory, unstage unmounts it.
func TestStaging_StagedByAnEarlierVersion(t *testing.T) {
	e := newEnv(t)
	staging, target := e.path("staging"), e.path("target")
	if err := os.Mkdir(staging, 0o750); err != nil {
		t.Fatal(err)
	}
	e.fake.Mount(e.volumeSource(), staging, false)
	if err := e.stage(e.id, staging, rw); err != nil {
		t.Fatalf("stage replayed over an old staging: %v", err)
	}
	if e.vols.Staging().Has(e.id, staging) || len(e.fake.Binds()) != 0 {
		t.Errorf("the replayed stage recorded or bound: binds %+v", e.fake.Binds())
	}
	if err := e.publish(e.id, staging, target, rw, false); err != nil {
		t.Fatalf("publish from an old staging: %v", err)
	}
	if src := e.at(t, target); src == nil || *src != e.volumeSource() {
		t.Errorf("target shows %v, want %v", src, e.volumeSource())
	}
	if err := e.unpublish(e.id, target); err != nil {
		t.Fatal(err)
	}
	if err := e.unstage(e.id, staging); err != nil {
		t.Fatal(err)
	}
	if e.at(t, staging) != nil {
		t.Errorf("unstage left the old staging mount")
	}
}

// Something else mounted at the staging path is refused, and nothing is
// recorded.
func TestStaging_ForeignMountRefused(t *testing.T) {
	e := newEnv(t)
	staging := e.path("staging")
	if err := os.Mkdir(staging, 0o750); err != nil {
		t.Fatal(err)
	}
	e.fake.Mount(foreign, staging, false)
	wantCode(t, "stage over another mount", e.stage(e.id, staging, rw), codes.FailedPrecondition)
	if e.vols.Staging().Has(e.id, staging) {
		t.Errorf("a refused stage was recorded")
	}
}

// Two volumes are never staged at one path: the second is refused as a
// staging path holding another volume's mount was.
func TestStaging_AnotherVolumesStagingPath(t *testing.T) {
	e := newEnv(t)
	staging := e.staged(t)
	other := e.create(t, "v2")
	wantCode(t, "stage of v2 at v1's staging path", e.stage(other.ID, staging, rw), codes.FailedPrecondition)
	if e.vols.Staging().Has(other.ID, staging) || !e.vols.Staging().Has(e.id, staging) {
		t.Errorf("records changed by a refused stage")
	}
}
