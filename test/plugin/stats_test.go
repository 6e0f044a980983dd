package plugin

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
)

// TestStats_VolumeOwnUsageAndHealth: stats report the volume's own bytes
// against its capacity, not the shared filesystem's, and health turns
// DEGRADED when a volume holds more than its (unenforced) capacity.
func TestStats_VolumeOwnUsageAndHealth(t *testing.T) {
	e := newEnv(t)
	other := e.create("other", 4*mib, map[string]string{"pool": "data"})
	v := e.create("stats", 4*mib, map[string]string{"pool": "data"})
	id := v.GetVolumeId()
	staging, target := e.paths(id)
	e.must(e.stage(id, staging))
	e.must(e.publish(id, staging, target, false, rwo))
	// Fill the other volume through its directory: it must not count here.
	so, to := e.paths(other.GetVolumeId())
	e.must(e.stage(other.GetVolumeId(), so))
	e.must(e.publish(other.GetVolumeId(), so, to, false, rwo))
	e.must(os.WriteFile(filepath.Join(to, "big"), make([]byte, 6*mib), 0o644))
	e.must(os.WriteFile(filepath.Join(target, "f"), make([]byte, 2*mib), 0o644))

	r, err := e.p.Node().NodeGetVolumeStats(ctx(t), &csi.NodeGetVolumeStatsRequest{VolumeId: id, VolumePath: target})
	if err != nil {
		t.Fatal(err)
	}
	b := r.GetUsage()[0]
	if b.GetTotal() != 4*mib || b.GetUsed() < 2*mib || b.GetUsed() > 3*mib || b.GetAvailable() != b.GetTotal()-b.GetUsed() {
		t.Errorf("bytes usage = %v", b)
	}
	if i := r.GetUsage()[1]; i.GetUsed() != 2 || i.GetAvailable() <= 0 {
		t.Errorf("inode usage = %v", i)
	}
	_, err = e.p.Node().NodeGetVolumeStats(ctx(t), &csi.NodeGetVolumeStatsRequest{VolumeId: id, VolumePath: to})
	wantCode(t, err, codes.NotFound, "stats at another volume's target")

	h, err := e.p.Node().NodeGetVolumeHealth(ctx(t), &csi.NodeGetVolumeHealthRequest{VolumeId: other.GetVolumeId()})
	if err != nil {
		t.Fatal(err)
	}
	if s := h.GetVolumeHealth().GetHealthStatuses(); len(s) != 1 || s[0].GetStatus() != csi.VolumeHealthErrorType_DEGRADED {
		t.Errorf("health of an over-full volume = %v", s)
	}
	h, err = e.p.Node().NodeGetVolumeHealth(ctx(t), &csi.NodeGetVolumeHealthRequest{VolumeId: id})
	if err != nil || len(h.GetVolumeHealth().GetHealthStatuses()) != 0 {
		t.Errorf("health of a healthy volume = %v %v", h, err)
	}
	for _, x := range []struct{ id, s, tg string }{{id, staging, target}, {other.GetVolumeId(), so, to}} {
		e.must(e.unpublish(x.id, x.tg))
		e.must(e.unstage(x.id, x.s))
		e.must(e.delete(x.id))
	}
}
