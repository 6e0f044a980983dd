package bench

import (
	"context"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/hack/bench/load"
	"github.com/localdisk-csi/localdisk/test/testutil"
)

// TestPopulateMatchesPlugin checks that the volumes load.Populate writes are
// the plugin's own: it loads them, lists them, and a CreateVolume of a
// populated name finds the populated volume (same ID) instead of making
// another. If the record format or the ID derivation changes, this fails
// rather than the benchmarks silently measuring something else.
func TestPopulateMatchesPlugin(t *testing.T) {
	dir := testutil.ShortTempDir(t)
	ctx := context.Background()
	bin, err := load.Build(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	in, err := load.NewInstance(dir, bin)
	if err != nil {
		t.Fatal(err)
	}
	const n = 5
	if err := in.PopulateTo(ctx, n); err != nil {
		t.Fatal(err)
	}
	if _, err := in.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p := in.Proc
		if err := in.Stop(); err != nil {
			t.Errorf("stopping the plugin: %v\n%s", err, p.LogTail(4096))
		}
	})
	conn, err := load.Dial(in.Endpoint)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cc := csi.NewControllerClient(conn)
	list, err := cc.ListVolumes(ctx, &csi.ListVolumesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.GetEntries()) != n {
		t.Fatalf("ListVolumes: %d volumes, want %d", len(list.GetEntries()), n)
	}
	resp, err := cc.CreateVolume(ctx, &csi.CreateVolumeRequest{
		Name:               "populated-000001",
		CapacityRange:      &csi.CapacityRange{RequiredBytes: 1 << 20, LimitBytes: 1 << 20},
		VolumeCapabilities: []*csi.VolumeCapability{load.MountCapability()},
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := layout.DirVolumeID(load.PoolName, "populated-000001"); resp.GetVolume().GetVolumeId() != want {
		t.Errorf("CreateVolume of a populated name: volume %q, want the populated %q", resp.GetVolume().GetVolumeId(), want)
	}
	if list, err = cc.ListVolumes(ctx, &csi.ListVolumesRequest{}); err != nil || len(list.GetEntries()) != n {
		t.Errorf("after CreateVolume of a populated name: %d volumes (%v), want still %d", len(list.GetEntries()), err, n)
	}
}
