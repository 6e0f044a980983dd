package plugin

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"

	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/test/testutil"
)

// TestStrictCodes: the CSI spec's codes where a request cannot be served as
// asked, and nothing changes.
func TestStrictCodes(t *testing.T) {
	e := newEnv(t)
	v := e.create("strict", 2*mib, nil)
	id := v.GetVolumeId()
	staging, target := e.paths(id)
	e.must(e.stage(id, staging))

	err := e.publish(id, "", target, false, rwo)
	wantCode(t, err, codes.FailedPrecondition, "NodePublishVolume without staging_target_path")

	vvc, err := e.p.Controller().ValidateVolumeCapabilities(ctx(t), &csi.ValidateVolumeCapabilitiesRequest{
		VolumeId: id, VolumeCapabilities: []*csi.VolumeCapability{rwo},
		VolumeContext: map[string]string{"unknown": "x"}})
	if err != nil || vvc.GetConfirmed() != nil {
		t.Errorf("ValidateVolumeCapabilities with a context key the volume lacks: %v, %v; want no confirmation", vvc, err)
	}

	block := &csi.VolumeCapability{AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}},
		AccessMode: rwo.GetAccessMode()}
	_, err = e.p.Controller().ControllerExpandVolume(ctx(t), &csi.ControllerExpandVolumeRequest{VolumeId: id,
		CapacityRange: &csi.CapacityRange{RequiredBytes: 4 * mib}, VolumeCapability: block})
	wantCode(t, err, codes.InvalidArgument, "ControllerExpandVolume with block access of a directory volume")

	e.must(e.publish(id, staging, target, false, rwo))
	_, err = e.p.Node().NodeExpandVolume(ctx(t), &csi.NodeExpandVolumeRequest{VolumeId: id, VolumePath: target,
		CapacityRange: &csi.CapacityRange{RequiredBytes: mib, LimitBytes: mib}})
	wantCode(t, err, codes.OutOfRange, "NodeExpandVolume with limit_bytes below the volume's size")
	if got := e.list(); len(got) == 0 || got[0].GetVolume().GetCapacityBytes() != 2*mib {
		t.Errorf("the volume changed: %v", got)
	}
	e.must(e.unpublish(id, target))
	e.must(e.unstage(id, staging))

	// An existing name asked for on another node: ALREADY_EXISTS.
	other := &csi.TopologyRequirement{Requisite: []*csi.Topology{{Segments: map[string]string{layout.TopologyKey: "node-2"}}}}
	_, err = e.p.Controller().CreateVolume(ctx(t), &csi.CreateVolumeRequest{Name: "strict",
		VolumeCapabilities: []*csi.VolumeCapability{rwo}, CapacityRange: &csi.CapacityRange{RequiredBytes: 2 * mib},
		AccessibilityRequirements: other})
	wantCode(t, err, codes.AlreadyExists, "CreateVolume of an existing name outside the requisite topology")

	// A topology with a segment this node lacks is not this node.
	for _, segs := range []map[string]string{{layout.TopologyKey: "node-1", "zone": "z9"}, {"zone": "z9"}} {
		r, err := e.p.Controller().GetCapacity(ctx(t), &csi.GetCapacityRequest{AccessibleTopology: &csi.Topology{Segments: segs}})
		if err != nil || r.GetAvailableCapacity() != 0 {
			t.Errorf("GetCapacity for topology %v: %v, %v; want 0", segs, r, err)
		}
	}
}

// TestMountGroup_ReadOnlyPublishKeepsOwnership: a read-only publish with
// another volume_mount_group (a second pod reading) leaves the volume's
// group to its writer.
func TestMountGroup_ReadOnlyPublishKeepsOwnership(t *testing.T) {
	e := newEnv(t)
	id := e.create("grp-ro", mib, nil).GetVolumeId()
	staging, target := e.paths(id)
	e.must(e.stage(id, staging))
	c := mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_MULTI_WRITER)
	c.GetMount().VolumeMountGroup = "2000"
	e.must(e.publish(id, staging, target, false, c))
	c.GetMount().VolumeMountGroup = "4000"
	reader := filepath.Join(filepath.Dir(target), "reader")
	e.must(e.publish(id, staging, reader, true, c))
	fi, err := os.Stat(target)
	e.must(err)
	if gid := fi.Sys().(*syscall.Stat_t).Gid; gid != 2000 {
		t.Errorf("volume root group %d after a read-only publish with group 4000, want the writer's 2000", gid)
	}
	e.must(e.unpublish(id, reader))
	e.must(e.unpublish(id, target))
	e.must(e.unstage(id, staging))
}

// TestNodeIDMustBeATopologyValue: a node ID that cannot be a topology value
// (over 63 characters) stops the plugin at start, naming the flag.
func TestNodeIDMustBeATopologyValue(t *testing.T) {
	testutil.RequireRoot(t)
	dir := testutil.ShortTempDir(t)
	out, err := exec.Command(testutil.BuildPlugin(t), "serve", "--endpoint", "unix://"+filepath.Join(dir, "csi.sock"),
		"--state-dir", filepath.Join(dir, "state"), "--node-id", strings.Repeat("n", 64)).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "--node-id") {
		t.Errorf("serve with a 64-character node ID: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "csi.sock")); err == nil {
		t.Error("the plugin created its socket")
	}
}

// TestMount_StaleDeleteNeverReachesTheDisksNextVolume: each volume made on
// a disk has its own ID, so a CO's late retry of an old volume's delete
// finds nothing, and the disk's next volume keeps its data.
func TestMount_StaleDeleteNeverReachesTheDisksNextVolume(t *testing.T) {
	e := newEnv(t)
	params := map[string]string{"pool": "disks"}
	old := e.create("old", 0, params).GetVolumeId()
	e.must(e.delete(old))
	next := e.create("next", 0, params).GetVolumeId()
	if next == old || layout.DiskOf(next) != layout.DiskOf(old) {
		t.Fatalf("volumes %s and %s: want two IDs on one disk", old, next)
	}
	staging, target := e.paths(next)
	e.must(e.stage(next, staging))
	e.must(e.publish(next, staging, target, false, rwo))
	e.must(os.WriteFile(filepath.Join(target, "data"), []byte("next's"), 0o644))
	e.must(e.unpublish(next, target))
	e.must(e.unstage(next, staging))
	e.must(e.delete(old)) // the late retry
	staging, target = e.paths(next)
	e.must(e.stage(next, staging))
	e.must(e.publish(next, staging, target, false, rwo))
	if b, err := os.ReadFile(filepath.Join(target, "data")); err != nil || string(b) != "next's" {
		t.Errorf("the next volume's data after a late delete of the old one: %q, %v", b, err)
	}
	e.must(e.unpublish(next, target))
	e.must(e.unstage(next, staging))
	// A replay of the create gets the same ID.
	if again := e.create("next", 0, params).GetVolumeId(); again != next {
		t.Errorf("replayed CreateVolume: %s, want %s", again, next)
	}
}
