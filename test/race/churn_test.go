package race

import (
	"fmt"
	"sync"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/localdisk-csi/localdisk/test/testutil"
)

// TestListAndCapacity_UnderChurn: while volumes are created, expanded and
// deleted in every pool, ListVolumes (whole and paged) and GetCapacity never
// fail, never list a volume twice, and never report a negative, fractional
// or over-capacity value.
func TestListAndCapacity_UnderChurn(t *testing.T) {
	e := newEnv(t)
	stats := e.MustCreate("stats", 4*testutil.MiB, map[string]string{"pool": testutil.RootPool}).GetVolumeId()
	staging, target := e.Paths("stats")
	e.Must(e.Stage(stats, staging), "stage")
	e.Must(e.Publish(stats, staging, target, false), "publish")
	const churners, rounds = 4, 12
	done := make(chan struct{})
	var churn, readers sync.WaitGroup
	for w := range churners {
		churn.Add(1)
		go func() {
			defer churn.Done()
			for i := range rounds {
				kind := kinds[(w+i)%len(kinds)]
				churnOnce(t, e, fmt.Sprintf("churn-%d-%d", w, i), poolOf[kind], sizeOf(kind), kind != "mount")
			}
		}()
	}
	for r := range 4 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for n := 0; ; n++ {
				select {
				case <-done:
					if n > 0 {
						return
					}
				default:
				}
				switch r {
				case 0:
					checkListing(t, e, 0)
				case 1:
					checkListing(t, e, 2)
				case 2:
					checkCapacities(t, e)
				case 3:
					checkStats(t, e, stats, target)
				}
			}
		}()
	}
	churn.Wait()
	close(done)
	readers.Wait()
	e.Must(e.Unpublish(stats, target), "unpublish")
	e.Must(e.Unstage(stats, staging), "unstage")
	e.Must(e.Delete(stats), "delete")
	if vols := e.CheckConverged(); len(vols) != 0 {
		t.Errorf("%d volumes left after the churn", len(vols))
	}
}

// checkListing lists every volume, maxEntries at a time.
func checkListing(t *testing.T, e *testutil.Env, maxEntries int32) {
	seen := map[string]bool{}
	token, last := "", ""
	for {
		ctx, cancel := e.Ctx()
		r, err := e.P.Controller().ListVolumes(ctx, &csi.ListVolumesRequest{MaxEntries: maxEntries, StartingToken: token})
		cancel()
		if err != nil {
			t.Errorf("ListVolumes (max %d) under churn: %v", maxEntries, err)
			return
		}
		for _, en := range r.GetEntries() {
			v := en.GetVolume()
			id := v.GetVolumeId()
			if seen[id] || id <= last {
				t.Errorf("ListVolumes (max %d) under churn: %s listed twice or out of order", maxEntries, id)
			}
			seen[id], last = true, id
			if c := v.GetCapacityBytes(); c <= 0 || c%testutil.MiB != 0 {
				t.Errorf("ListVolumes under churn: %s has %d bytes", id, c)
			}
		}
		if token = r.GetNextToken(); token == "" {
			return
		}
	}
}

// checkCapacities asks GetCapacity of every pool and of the node.
func checkCapacities(t *testing.T, e *testutil.Env) {
	disks := int64(0)
	for _, d := range e.Disks {
		disks += testutil.DiskSize(t, d)
	}
	limits := map[string]int64{testutil.RootPool: e.Caps[testutil.RootPool],
		testutil.PathPool: e.Caps[testutil.PathPool], testutil.MountPool: disks}
	for pool, limit := range limits {
		avail, maxVol, err := e.Capacity(pool)
		if err != nil || avail < 0 || avail > limit || avail%testutil.MiB != 0 || maxVol < 0 || maxVol > avail {
			t.Errorf("GetCapacity(%s) under churn: available %d, maximum %d, %v (capacity %d)", pool, avail, maxVol, err, limit)
		}
	}
	ctx, cancel := e.Ctx()
	defer cancel()
	r, err := e.P.Controller().GetCapacity(ctx, &csi.GetCapacityRequest{})
	if total := limits[testutil.RootPool] + limits[testutil.PathPool] + disks; err != nil ||
		r.GetAvailableCapacity() < 0 || r.GetAvailableCapacity() > total {
		t.Errorf("GetCapacity() under churn: %v, %v (capacity %d)", r, err, total)
	}
}

// checkStats asks the stats and health of a published volume.
func checkStats(t *testing.T, e *testutil.Env, id, target string) {
	ctx, cancel := e.Ctx()
	defer cancel()
	if _, err := e.P.Node().NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: id, VolumePath: target}); err != nil {
		t.Errorf("NodeGetVolumeStats under churn: %v", err)
	}
	h, err := e.P.Node().NodeGetVolumeHealth(ctx, &csi.NodeGetVolumeHealthRequest{VolumeId: id})
	if err != nil || len(h.GetVolumeHealth().GetHealthStatuses()) != 0 {
		t.Errorf("NodeGetVolumeHealth under churn: %v, %v", h, err)
	}
}

// churnOnce creates a volume in pool (a MOUNT pool out of disks is not an
// error: the churners outnumber its disks), expands it to 6 MiB if expand,
// and deletes it.
func churnOnce(t *testing.T, e *testutil.Env, name, pool string, size int64, expand bool) {
	v, err := e.Create(name, size, map[string]string{"pool": pool})
	if status.Code(err) == codes.ResourceExhausted {
		return
	}
	if err != nil {
		t.Errorf("create %s: %v", name, err)
		return
	}
	if expand {
		ctx, cancel := e.Ctx()
		_, err := e.P.Controller().ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{
			VolumeId: v.GetVolumeId(), CapacityRange: &csi.CapacityRange{RequiredBytes: 6 * testutil.MiB}})
		cancel()
		if err != nil && status.Code(err) != codes.ResourceExhausted {
			t.Errorf("expand %s: %v", name, err)
		}
	}
	if err := e.Delete(v.GetVolumeId()); err != nil {
		t.Errorf("delete %s: %v", name, err)
	}
}
