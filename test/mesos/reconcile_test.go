package mesos

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/localdisk-csi/localdisk/test/testutil"
)

// TestMesos05_ListVolumesOnePage lists a hundred volumes and two
// pre-existing disks the way Mesos reconciles every 10 s: one page, no
// duplicates, the same answer twice, and no change to any file of the
// plugin's state or pools.
func TestMesos05_ListVolumesOnePage(t *testing.T) {
	a := startAgent(t, setup{RootMB: 512, Paths: []pathDisk{{DiskMiB: 128, MB: 100}}, Mounts: []int{32, 32}})
	want := map[string]bool{a.diskID(0): true, a.diskID(1): true}
	for i := range 100 {
		params := map[string]string{"pool": rootPool}
		if i%2 == 1 {
			params["pool"] = a.pathPool(0)
		}
		want[a.mustCreate(newUUID(), mib, params).GetVolumeId()] = true
	}
	before := snapshot(t, a.state, filepath.Join(a.work, "localdisk"), filepath.Join(a.pathRoots[0], "localdisk"))

	first := a.listRaw()
	got := a.list() // fails on a second page or a duplicate
	if len(got) != len(want) {
		t.Errorf("ListVolumes{} returned %d volumes, want %d", len(got), len(want))
	}
	for id := range want {
		if _, ok := got[id]; !ok {
			t.Errorf("ListVolumes{} does not list %s", id)
		}
	}
	if second := a.listRaw(); !proto.Equal(first, second) {
		t.Errorf("two ListVolumes{} in a row differ")
	}
	if d := before.diff(snapshot(t, a.state, filepath.Join(a.work, "localdisk"), filepath.Join(a.pathRoots[0], "localdisk"))); len(d) > 0 {
		t.Errorf("ListVolumes changed files: %q", d)
	}
}

// TestMesos06_ListsOnlyOwnVolumes runs two plugin instances on one node,
// and plants a directory in a pool: each instance lists only the volumes
// it made (and its own pre-existing disks), never what it finds on disk.
func TestMesos06_ListsOnlyOwnVolumes(t *testing.T) {
	a := startAgent(t, setup{RootMB: 64, Paths: []pathDisk{{DiskMiB: 64, MB: 32}}, Mounts: []int{32}})
	b := startAgent(t, setup{RootMB: 64, Mounts: []int{32}})
	va := a.mustCreate(newUUID(), mib, map[string]string{"pool": a.pathPool(0)})
	vb := b.mustCreate(newUUID(), mib, nil)

	// Leftovers that no CreateVolume made: a directory in the pool's
	// volumes directory, and a foreign filesystem mounted next to a disk.
	planted := filepath.Join(a.pathRoots[0], "localdisk", "volumes", "planted-volume")
	if err := os.Mkdir(planted, 0o755); err != nil {
		t.Fatal(err)
	}
	testutil.LoopDisk(t, a.dir, 32, "ext4")
	a.restart()

	check := func(x *agent, want ...string) {
		t.Helper()
		got := slices.Sorted(maps.Keys(x.list()))
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("ListVolumes = %q, want only this instance's %q", got, want)
		}
	}
	check(a, va.GetVolumeId(), a.diskID(0))
	check(b, vb.GetVolumeId(), b.diskID(0))
}

// TestMesos07_GetCapacityPerProfile asks GetCapacity as Mesos does, once per
// profile with one capability and no topology: the answer is what a
// CreateVolume with that profile could still get, net of existing volumes,
// and 0 (never an error) for whatever the plugin cannot serve.
func TestMesos07_GetCapacityPerProfile(t *testing.T) {
	a := startAgent(t, setup{RootMB: 256, Paths: []pathDisk{{DiskMiB: 256, MB: 128}}, Mounts: []int{32}})
	root := map[string]string{"pool": rootPool}
	path := map[string]string{"kind": "path"}

	if n := a.mustCapacity(root); n != 256*mib {
		t.Errorf("GetCapacity(pool root) = %d, want %d", n, 256*mib)
	}
	if n := a.mustCapacity(path); n != 128*mib {
		t.Errorf("GetCapacity(kind path) = %d, want %d", n, 128*mib)
	}
	a.mustCreate(newUUID(), 64*mib, root)
	if n := a.mustCapacity(root); n != 192*mib {
		t.Errorf("GetCapacity(pool root) after a 64 MiB volume = %d, want %d", n, 192*mib)
	}

	for _, tc := range []struct {
		name   string
		cap    *csi.VolumeCapability
		params map[string]string
	}{
		{"block on a directory pool", blockCap(), root},
		{"multi-node access", mountCap(csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER), root},
		{"unknown parameter", snw, map[string]string{"pool": rootPool, "iops": "100"}},
		{"unknown pool", snw, map[string]string{"pool": "no-such-pool"}},
		{"unknown kind", snw, map[string]string{"kind": "tape"}},
		{"pre-existing disks' pool", snw, map[string]string{"pool": mountPool}},
		{"pre-existing disks' kind", snw, map[string]string{"kind": "mount"}},
	} {
		n, err := a.capacity(tc.cap, tc.params)
		if err != nil || n != 0 {
			t.Errorf("GetCapacity(%s) = %d, %v; want OK with 0", tc.name, n, err)
		}
	}

	// What GetCapacity promises, CreateVolume gives, and then no more.
	avail := a.mustCapacity(path)
	a.mustCreate(newUUID(), avail, path)
	if n := a.mustCapacity(path); n != 0 {
		t.Errorf("GetCapacity(kind path) after using it all = %d, want 0", n)
	}
	_, err := a.create(newUUID(), mib, path)
	wantCode(t, "CreateVolume in a full pool", err, codes.ResourceExhausted)
}

// TestMesos08_CapacitiesWholeMiB configures pools whose sizes are not whole
// MiB (Mesos keeps MB with three decimals) and checks that every capacity
// in GetCapacity and ListVolumes is whole MiB, and that a request for a
// size that is not whole MiB is refused rather than rounded.
func TestMesos08_CapacitiesWholeMiB(t *testing.T) {
	a := startAgent(t, setup{RootMB: 100.5, Paths: []pathDisk{{DiskMiB: 64, MB: 50.125}}, Mounts: []int{33}})
	for _, params := range []map[string]string{{"pool": rootPool}, {"kind": "path"}, {"kind": "mount"}} {
		if n := a.mustCapacity(params); n%mib != 0 {
			t.Errorf("GetCapacity(%v) = %d, not whole MiB", params, n)
		}
	}
	if n := a.mustCapacity(map[string]string{"pool": rootPool}); n != 100*mib {
		t.Errorf("GetCapacity(root) = %d, want 100.5 MB rounded down to %d", n, 100*mib)
	}
	a.mustCreate(newUUID(), 3*mib, map[string]string{"kind": "path"})
	_, err := a.create(newUUID(), 3*mib/2, map[string]string{"pool": rootPool})
	if err == nil {
		t.Errorf("CreateVolume(1.5 MiB) succeeded: Mesos expects exactly 1.5 MiB, which is not whole MiB")
	}
	notRetried(t, "CreateVolume(1.5 MiB)", err)
	for id, v := range a.list() {
		if c := v.GetCapacityBytes(); c%mib != 0 || c <= 0 {
			t.Errorf("ListVolumes: %s has %d bytes, not whole MiB", id, c)
		}
	}
}

// TestMesos09_VolumeContextDeterministic checks that the volume_context of
// each volume is the same in CreateVolume, in every ListVolumes, after a
// restart and after a reload of a reordered, resized configuration; and
// that it holds only the pool and kind.
func TestMesos09_VolumeContextDeterministic(t *testing.T) {
	a := startAgent(t, setup{RootMB: 128, Paths: []pathDisk{{DiskMiB: 64, MB: 32}}, Mounts: []int{32, 32}})
	want := map[string]map[string]string{
		a.diskID(0): {"pool": mountPool, "kind": "mount"},
		a.diskID(1): {"pool": mountPool, "kind": "mount"},
	}
	for _, tc := range []struct{ pool, kind string }{{rootPool, "root"}, {a.pathPool(0), "path"}} {
		v := a.mustCreate(newUUID(), 2*mib, map[string]string{"kind": tc.kind})
		vctx := map[string]string{"pool": tc.pool, "kind": tc.kind}
		if !maps.Equal(v.GetVolumeContext(), vctx) {
			t.Errorf("CreateVolume: volume_context %v, want only the pool and kind %v", v.GetVolumeContext(), vctx)
		}
		want[v.GetVolumeId()] = vctx
	}
	check := func(when string) {
		t.Helper()
		got := a.list()
		for id, vctx := range want {
			if !maps.Equal(got[id].GetVolumeContext(), vctx) {
				t.Errorf("%s: volume_context of %s = %v, want %v", when, id, got[id].GetVolumeContext(), vctx)
			}
		}
	}
	check("ListVolumes")
	check("second ListVolumes")
	a.restart()
	check("after a restart")

	// The operator reorders the resources and grows the ROOT pool.
	slices.Reverse(a.res)
	for i := range a.res {
		if a.res[i].Disk == nil {
			a.res[i].Scalar.Value = 256
		}
	}
	a.writeResources()
	a.restart()
	check("after a configuration reload")
}
