package controller

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/localdisk-csi/localdisk/driver/pool"
	"github.com/localdisk-csi/localdisk/driver/snapshot"
	"github.com/localdisk-csi/localdisk/driver/volume"
	"github.com/localdisk-csi/localdisk/driver/volume/volumetest"
)

// newSnapServer is a controller over a ROOT pool that copies
// (`snapshots: copy`) in a temporary directory, with its snapshots.
func newSnapServer(t *testing.T) *Server {
	dir := t.TempDir()
	cfg := &pool.Config{Pools: []pool.Spec{{Name: "r", Kind: pool.Root, Path: filepath.Join(dir, "root"),
		Capacity: pool.Bytes(100 * pool.MiB), Snapshots: pool.SnapshotsCopy}}}
	vols, err := volume.New(filepath.Join(dir, "state"), cfg, volumetest.Discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { vols.Close() })
	snaps, err := snapshot.New(vols, filepath.Join(dir, "state"), volumetest.Discard())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { snaps.Close() })
	return &Server{Volumes: vols, Snapshots: snaps, NodeID: "n1", TopologyKey: key}
}

func TestSnapshotRPCs(t *testing.T) {
	s := newSnapServer(t)
	ctx := context.Background()
	mk := func(name string, size int64, cs *csi.VolumeContentSource) (*csi.Volume, error) {
		r, err := s.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: name, VolumeCapabilities: []*csi.VolumeCapability{rwo},
			CapacityRange: &csi.CapacityRange{RequiredBytes: size}, VolumeContentSource: cs})
		return r.GetVolume(), err
	}
	code := func(t *testing.T, what string, err error, want codes.Code) {
		t.Helper()
		if got := status.Code(err); got != want {
			t.Errorf("%s: code %s (%v), want %s", what, got, err, want)
		}
	}
	src, err := mk("src", 4<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	other, err := mk("other", 4<<20, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{SourceVolumeId: src.VolumeId})
	code(t, "no name", err, codes.InvalidArgument)
	_, err = s.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "s"})
	code(t, "no source", err, codes.InvalidArgument)
	_, err = s.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "s", SourceVolumeId: src.VolumeId, Parameters: map[string]string{"x": "y"}})
	code(t, "an unknown parameter", err, codes.InvalidArgument)
	_, err = s.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "s", SourceVolumeId: "r-nosuchvolume"})
	code(t, "a missing source", err, codes.NotFound)

	capacity := func() int64 {
		r, err := s.GetCapacity(ctx, &csi.GetCapacityRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return r.AvailableCapacity
	}
	before := capacity()
	var ids []string
	for _, n := range []string{"s1", "s2", "s3"} {
		r, err := s.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: n, SourceVolumeId: src.VolumeId,
			Parameters: map[string]string{"csi.storage.k8s.io/volumesnapshot/name": n}})
		if err != nil {
			t.Fatal(err)
		}
		if r.Snapshot.SizeBytes != src.CapacityBytes || r.Snapshot.SourceVolumeId != src.VolumeId || r.Snapshot.CreationTime == nil {
			t.Errorf("snapshot %s = %v", n, r.Snapshot)
		}
		ids = append(ids, r.Snapshot.SnapshotId)
	}
	_, err = s.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: "s1", SourceVolumeId: other.VolumeId})
	code(t, "the name of another volume's snapshot", err, codes.AlreadyExists)
	if got := capacity(); got != before-3*src.CapacityBytes {
		t.Errorf("GetCapacity with 3 snapshots = %d, want %d - 3 x %d", got, before, src.CapacityBytes)
	}

	// Paging: two pages of 2 and 1, in ID order.
	p1, err := s.ListSnapshots(ctx, &csi.ListSnapshotsRequest{MaxEntries: 2})
	if err != nil || len(p1.Entries) != 2 || p1.NextToken == "" {
		t.Fatalf("first page: %v, %v", p1, err)
	}
	p2, err := s.ListSnapshots(ctx, &csi.ListSnapshotsRequest{MaxEntries: 2, StartingToken: p1.NextToken})
	if err != nil || len(p2.Entries) != 1 || p2.NextToken != "" {
		t.Fatalf("second page: %v, %v", p2, err)
	}
	_, err = s.ListSnapshots(ctx, &csi.ListSnapshotsRequest{StartingToken: "bogus"})
	code(t, "a token not issued", err, codes.Aborted)
	if r, err := s.ListSnapshots(ctx, &csi.ListSnapshotsRequest{SnapshotId: ids[1]}); err != nil || len(r.Entries) != 1 || r.Entries[0].Snapshot.SnapshotId != ids[1] {
		t.Errorf("by snapshot_id: %v, %v", r, err)
	}
	if r, err := s.ListSnapshots(ctx, &csi.ListSnapshotsRequest{SourceVolumeId: other.VolumeId}); err != nil || len(r.Entries) != 0 {
		t.Errorf("by a source without snapshots: %v, %v", r, err)
	}
	if r, err := s.ListSnapshots(ctx, &csi.ListSnapshotsRequest{SnapshotId: "r-snap-nothere"}); err != nil || len(r.Entries) != 0 {
		t.Errorf("by an unknown snapshot_id: %v, %v", r, err)
	}
	if r, err := s.GetSnapshot(ctx, &csi.GetSnapshotRequest{SnapshotId: ids[0]}); err != nil || r.Snapshot.SnapshotId != ids[0] {
		t.Errorf("GetSnapshot: %v, %v", r, err)
	}
	_, err = s.GetSnapshot(ctx, &csi.GetSnapshotRequest{SnapshotId: "r-snap-nothere"})
	code(t, "GetSnapshot of an unknown ID", err, codes.NotFound)

	fromSnap := &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: ids[0]}}}
	v, err := mk("restored", 0, fromSnap)
	if err != nil || v.CapacityBytes < src.CapacityBytes || v.ContentSource == nil {
		t.Errorf("restore: %v, %v", v, err)
	}
	_, err = s.CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "small", VolumeCapabilities: []*csi.VolumeCapability{rwo},
		CapacityRange: &csi.CapacityRange{LimitBytes: 1 << 20}, VolumeContentSource: fromSnap})
	code(t, "a limit below the source's size", err, codes.OutOfRange)
	_, err = mk("restored", 0, nil)
	code(t, "the restored name without its source", err, codes.AlreadyExists)
	_, err = mk("gone", 0, &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: "r-snap-nothere"}}})
	code(t, "a missing snapshot source", err, codes.NotFound)
	_, err = mk("gone", 0, &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: "r-nothere"}}})
	code(t, "a missing volume source", err, codes.NotFound)
	_, err = mk("empty", 0, &csi.VolumeContentSource{})
	code(t, "a source of neither kind", err, codes.InvalidArgument)
	if _, err := mk("clone", 0, &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: src.VolumeId}}}); err != nil {
		t.Errorf("clone: %v", err)
	}

	_, err = s.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{})
	code(t, "DeleteSnapshot without ID", err, codes.InvalidArgument)
	for _, id := range append(ids, "r-snap-nothere") {
		if _, err := s.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: id}); err != nil {
			t.Errorf("DeleteSnapshot %s: %v", id, err)
		}
	}
	if r, _ := s.ListSnapshots(ctx, &csi.ListSnapshotsRequest{}); len(r.GetEntries()) != 0 {
		t.Errorf("snapshots left: %v", r)
	}
}
