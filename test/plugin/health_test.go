package plugin

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"

	"github.com/localdisk-csi/localdisk/driver/layout"
)

// health is a volume's health statuses as "STATUS/Reason", from the
// controller (ControllerGetVolumeHealth) and from the node, which must
// agree.
func (e *env) health(id string) []string {
	e.t.Helper()
	c, err := e.p.Controller().ControllerGetVolumeHealth(ctx(e.t), &csi.ControllerGetVolumeHealthRequest{VolumeId: id})
	if err != nil {
		e.t.Fatalf("ControllerGetVolumeHealth %s: %v", id, err)
	}
	n, err := e.p.Node().NodeGetVolumeHealth(ctx(e.t), &csi.NodeGetVolumeHealthRequest{VolumeId: id})
	if err != nil {
		e.t.Fatalf("NodeGetVolumeHealth %s: %v", id, err)
	}
	got, node := statuses(c.GetVolumeHealth()), statuses(n.GetVolumeHealth())
	if c.GetVolumeHealth().GetVolumeId() != id || !slices.Equal(got, node) {
		e.t.Errorf("volume %s: controller says %v (id %q), node says %v", id, got, c.GetVolumeHealth().GetVolumeId(), node)
	}
	return got
}

func statuses(h *csi.VolumeHealth) []string {
	var out []string
	for _, s := range h.GetHealthStatuses() {
		out = append(out, s.GetStatus().String()+"/"+s.GetReason())
	}
	return out
}

// listHealth pages through ControllerListVolumeHealth, max entries a page.
func (e *env) listHealth(max int32) map[string][]string {
	e.t.Helper()
	out := map[string][]string{}
	token := ""
	for range 100 {
		r, err := e.p.Controller().ControllerListVolumeHealth(ctx(e.t), &csi.ControllerListVolumeHealthRequest{MaxEntries: max, StartingToken: token})
		if err != nil {
			e.t.Fatalf("ControllerListVolumeHealth: %v", err)
		}
		if max > 0 && len(r.GetEntries()) > int(max) {
			e.t.Errorf("a page of %d entries, max_entries %d", len(r.GetEntries()), max)
		}
		for _, h := range r.GetEntries() {
			out[h.GetVolumeId()] = statuses(h)
		}
		if token = r.GetNextToken(); token == "" {
			return out
		}
	}
	e.t.Fatal("ControllerListVolumeHealth never ended")
	return nil
}

// TestControllerHealth_ReportsWhatTheNodeKnows: the controller's volume
// health (GET_VOLUME_HEALTH, LIST_VOLUME_HEALTH) reports a volume over its
// unenforced capacity, one whose directory is gone, one whose disk is
// missing and the volumes of an unavailable pool, and lists only those.
func TestControllerHealth_ReportsWhatTheNodeKnows(t *testing.T) {
	e := newEnv(t)
	caps, err := e.p.Controller().ControllerGetCapabilities(ctx(t), &csi.ControllerGetCapabilitiesRequest{})
	e.must(err)
	var have []csi.ControllerServiceCapability_RPC_Type
	for _, c := range caps.GetCapabilities() {
		have = append(have, c.GetRpc().GetType())
	}
	for _, want := range []csi.ControllerServiceCapability_RPC_Type{csi.ControllerServiceCapability_RPC_GET_VOLUME_HEALTH, csi.ControllerServiceCapability_RPC_LIST_VOLUME_HEALTH} {
		if !slices.Contains(have, want) {
			t.Errorf("capabilities %v lack %v", have, want)
		}
	}

	healthy := e.create("healthy", 4*mib, map[string]string{"pool": "data"}).GetVolumeId()
	full := e.create("full", 4*mib, map[string]string{"pool": "data"}).GetVolumeId()
	gone := e.create("gone", 4*mib, map[string]string{"pool": "root"}).GetVolumeId()
	disk := e.create("disk", 0, map[string]string{"pool": "disks"}).GetVolumeId()
	vols := filepath.Join(e.data, "localdisk", "volumes")
	e.must(os.WriteFile(filepath.Join(vols, full, "big"), make([]byte, 6*mib), 0o644))
	e.must(os.RemoveAll(filepath.Join(e.dir, "root", "localdisk", "volumes", gone)))
	root := e.disks[0]
	if layout.DiskID("disks", root) != layout.DiskOf(disk) {
		root = e.disks[1]
	}
	if out, err := exec.Command("umount", root).CombinedOutput(); err != nil {
		t.Fatalf("umount: %v %s", err, out)
	}

	want := map[string][]string{
		full: {"DEGRADED/OverCapacity"},
		gone: {"DATA_LOSS/DirectoryMissing"},
		disk: {"INACCESSIBLE/DiskMissing"},
	}
	if got := e.health(healthy); len(got) != 0 {
		t.Errorf("healthy volume: %v, want no condition", got)
	}
	for id, w := range want {
		if got := e.health(id); !slices.Equal(got, w) {
			t.Errorf("volume %s: %v, want %v", id, got, w)
		}
	}
	for _, max := range []int32{0, 1, 2} {
		got := e.listHealth(max)
		if len(got) != len(want) {
			t.Errorf("max_entries %d: listed %v, want %v", max, got, want)
		}
		for id, w := range want {
			if !slices.Equal(got[id], w) {
				t.Errorf("max_entries %d: volume %s listed as %v, want %v", max, id, got[id], w)
			}
		}
	}

	// csi.proto: NOT_FOUND for a volume that does not exist, ABORTED for
	// a starting_token not issued.
	_, err = e.p.Controller().ControllerGetVolumeHealth(ctx(t), &csi.ControllerGetVolumeHealthRequest{VolumeId: "nope"})
	wantCode(t, err, codes.NotFound, "health of an unknown volume")
	_, err = e.p.Controller().ControllerGetVolumeHealth(ctx(t), &csi.ControllerGetVolumeHealthRequest{})
	wantCode(t, err, codes.InvalidArgument, "health without a volume ID")
	_, err = e.p.Controller().ControllerListVolumeHealth(ctx(t), &csi.ControllerListVolumeHealthRequest{StartingToken: "bogus"})
	wantCode(t, err, codes.Aborted, "a starting_token not issued")

	// The PATH pool's disk goes: its volumes are in an unavailable pool.
	if out, err := exec.Command("umount", e.data).CombinedOutput(); err != nil {
		t.Fatalf("umount: %v %s", err, out)
	}
	for _, id := range []string{healthy, full} {
		if got := e.health(id); !slices.Equal(got, []string{"INACCESSIBLE/PoolUnavailable"}) {
			t.Errorf("volume %s of an unmounted pool: %v, want INACCESSIBLE/PoolUnavailable", id, got)
		}
	}
}

// A directory volume's fs_type is judged at CreateVolume: a PV or a Mesos
// volume that recorded one before that rule (csi-provisioner before 2.0
// defaulted to ext4) still stages and publishes, whatever the pool's
// filesystem is.
func TestDirectoryVolume_StagesWithARecordedFSType(t *testing.T) {
	e := newEnv(t)
	id := e.create("legacy", 4*mib, map[string]string{"pool": "data"}).GetVolumeId()
	staging, target := e.paths(id)
	c := &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{FsType: "xfs"}},
		AccessMode: rwo.AccessMode,
	}
	_, err := e.p.Node().NodeStageVolume(ctx(t), &csi.NodeStageVolumeRequest{VolumeId: id, StagingTargetPath: staging, VolumeCapability: c})
	e.must(err)
	_, err = e.p.Node().NodePublishVolume(ctx(t), &csi.NodePublishVolumeRequest{VolumeId: id, StagingTargetPath: staging, TargetPath: target, VolumeCapability: c})
	e.must(err)
	e.must(os.WriteFile(filepath.Join(target, "f"), []byte("x"), 0o644))
	e.must(e.unpublish(id, target))
	e.must(e.unstage(id, staging))
	e.must(e.delete(id))
}
