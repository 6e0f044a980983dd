package mesos

import (
	"context"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/localdisk-csi/localdisk/test/testutil"
)

// TestMesos04_NoRetryableCodesForPermanentErrors provokes the permanent
// failures of CreateVolume and DeleteVolume (the two calls Mesos retries
// forever on UNAVAILABLE and DEADLINE_EXCEEDED) and checks their codes;
// and it lets a slow disk wipe time out on the client, as Mesos's deadline
// would, and retries until the wipe is done.
func TestMesos04_NoRetryableCodesForPermanentErrors(t *testing.T) {
	a := startAgent(t, setup{RootMB: 64, Paths: []pathDisk{{DiskMiB: 64, MB: 32}}, Mounts: []int{64}})
	root := map[string]string{"pool": rootPool}
	name := newUUID()
	v := a.mustCreate(name, 48*mib, root)

	_, err := a.create(newUUID(), 32*mib, root)
	wantCode(t, "full pool", err, codes.ResourceExhausted)
	_, err = a.create(newUUID(), 128*mib, root)
	wantCode(t, "larger than the pool", err, codes.OutOfRange)
	_, err = a.create(name, 8*mib, root)
	wantCode(t, "same name, other size", err, codes.AlreadyExists)
	_, err = a.create(newUUID(), mib, map[string]string{"pool": rootPool, "fstype": "xfs"})
	wantCode(t, "unknown parameter", err, codes.InvalidArgument)

	// A published volume cannot be deleted yet: not a transient error.
	a.mustMount(v.GetVolumeId(), v.GetVolumeContext())
	err = a.delete(v.GetVolumeId())
	if err == nil {
		t.Errorf("DeleteVolume of a published volume succeeded")
	}
	notRetried(t, "DeleteVolume of a published volume", err)
	a.mustUnmount(v.GetVolumeId())

	// A PATH pool whose disk is missing: nothing new, nothing deleted.
	pv := a.mustCreate(newUUID(), 4*mib, map[string]string{"pool": a.pathPool(0)})
	replug := testutil.UnplugDisk(t, a.pathRoots[0])
	_, err = a.create(newUUID(), 4*mib, map[string]string{"pool": a.pathPool(0)})
	if err == nil {
		t.Errorf("CreateVolume in a pool whose disk is missing succeeded")
	}
	notRetried(t, "CreateVolume in a pool whose disk is missing", err)
	err = a.delete(pv.GetVolumeId())
	if err == nil {
		t.Errorf("DeleteVolume in a pool whose disk is missing succeeded")
	}
	notRetried(t, "DeleteVolume in a pool whose disk is missing", err)
	replug()
	if _, ok := a.list()[pv.GetVolumeId()]; !ok {
		t.Errorf("the volume whose disk was missing is no longer listed")
	}
	if err := a.delete(pv.GetVolumeId()); err != nil {
		t.Errorf("DeleteVolume once the disk is back: %v", err)
	}

	// Wiping a full disk: the first call runs out of time on the client
	// side; Mesos retries until OK, and the disk must end up empty.
	disk := a.mountRoots[0]
	for i := range 40 {
		sub := filepath.Join(disk, fmt.Sprintf("d%02d", i))
		if err := os.Mkdir(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		for j := range 50 {
			writeFile(t, filepath.Join(sub, fmt.Sprintf("f%02d", j)), "x")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	_, err = a.p.Controller().DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: a.diskID(0)})
	cancel()
	t.Logf("first DeleteVolume with a short deadline: %v", err)
	for attempt := 0; ; attempt++ {
		err = a.delete(a.diskID(0))
		if c := codeOf(err); (c != codes.Unavailable && c != codes.DeadlineExceeded) || attempt == 10 {
			break
		}
	}
	if err != nil {
		t.Fatalf("retried DeleteVolume of the disk: %v", err)
	}
	if left := entries(t, disk); !slices.Equal(left, []string{"lost+found"}) {
		t.Errorf("the disk holds %q after DeleteVolume, want only lost+found", left)
	}
	if _, ok := a.list()[a.diskID(0)]; !ok {
		t.Errorf("the wiped disk is no longer listed")
	}
}

// TestMesos10_CreateVolumeExactSize is CREATE_DISK: name a UUID, required ==
// limit == S. The volume must be exactly S, in CreateVolume and in later
// ListVolumes; without room, a non-retryable error.
func TestMesos10_CreateVolumeExactSize(t *testing.T) {
	a := startAgent(t, setup{RootMB: 128, Paths: []pathDisk{{DiskMiB: 128, MB: 96}}, Mounts: []int{48}})
	for _, tc := range []struct {
		params map[string]string
		size   int64
	}{
		{map[string]string{"pool": rootPool}, 64 * mib},
		{map[string]string{"kind": "path"}, 17 * mib},
		{map[string]string{"pool": a.pathPool(0)}, 79 * mib},
	} {
		v := a.mustCreate(newUUID(), tc.size, tc.params)
		if got := a.list()[v.GetVolumeId()].GetCapacityBytes(); got != tc.size {
			t.Errorf("ListVolumes reports %d bytes for %s, created with %d", got, v.GetVolumeId(), tc.size)
		}
	}
	for _, tc := range []struct {
		what   string
		params map[string]string
		size   int64
		code   codes.Code
	}{
		{"PATH pool with 0 bytes left", map[string]string{"kind": "path"}, mib, codes.ResourceExhausted},
		{"ROOT pool with 64 MiB left", map[string]string{"pool": rootPool}, 65 * mib, codes.ResourceExhausted},
		{"larger than the ROOT pool", map[string]string{"pool": rootPool}, 129 * mib, codes.OutOfRange},
		{"larger than every pool", nil, 1 << 40, codes.OutOfRange},
		// Whole disks are pre-existing volumes (item 14): none is ever
		// handed out by CreateVolume, not even for its exact size.
		{"a whole disk of a MOUNT pool", map[string]string{"kind": "mount"}, fsSize(t, a.mountRoots[0]), codes.OutOfRange},
	} {
		_, err := a.create(newUUID(), tc.size, tc.params)
		wantCode(t, tc.what, err, tc.code)
	}
	// A whole disk is not exactly S: fail rather than hand out more.
	b := startAgent(t, setup{Mounts: []int{48}})
	_, err := b.create(newUUID(), 16*mib, map[string]string{"kind": "mount"})
	wantCode(t, "16 MiB from a pool of 48 MiB disks", err, codes.OutOfRange, codes.ResourceExhausted)
}

// TestMesos11_CreateVolumeReplay replays a CreateVolume with the same name,
// as Mesos does after an agent failover: the same ID and context come back
// after a restart, a crash and a reboot; another size is ALREADY_EXISTS.
func TestMesos11_CreateVolumeReplay(t *testing.T) {
	a := startAgent(t, setup{RootMB: 128, Paths: []pathDisk{{DiskMiB: 64, MB: 48}}})
	type created struct {
		name   string
		size   int64
		params map[string]string
		vol    *csi.Volume
	}
	var vols []created
	for _, params := range []map[string]string{{"pool": rootPool}, {"kind": "path"}} {
		name := newUUID()
		vols = append(vols, created{name, 8 * mib, params, a.mustCreate(name, 8*mib, params)})
	}
	replay := func(when string) {
		t.Helper()
		for _, c := range vols {
			v, err := a.create(c.name, c.size, c.params)
			if err != nil {
				t.Errorf("%s: replayed CreateVolume(%s): %v", when, c.name, err)
				continue
			}
			if v.GetVolumeId() != c.vol.GetVolumeId() || !maps.Equal(v.GetVolumeContext(), c.vol.GetVolumeContext()) ||
				v.GetCapacityBytes() != c.size {
				t.Errorf("%s: replayed CreateVolume(%s) = %v, first answer %v", when, c.name, v, c.vol)
			}
			_, err = a.create(c.name, 2*c.size, c.params)
			wantCode(t, when+": same name, another size", err, codes.AlreadyExists)
		}
		if n := len(a.list()); n != len(vols) {
			t.Errorf("%s: %d volumes listed, want %d", when, n, len(vols))
		}
	}
	replay("at once")
	a.restart()
	replay("after a restart")
	a.p.Kill()
	a.p.Restart()
	replay("after a crash")
	a.reboot()
	replay("after a reboot")
}

// TestMesos12_DeleteVolumeIdempotent deletes unknown and already deleted
// IDs (OK), and checks that deletion gives the space back to GetCapacity.
func TestMesos12_DeleteVolumeIdempotent(t *testing.T) {
	a := startAgent(t, setup{RootMB: 64, Paths: []pathDisk{{DiskMiB: 64, MB: 32}}})
	for _, id := range []string{"no-such-volume", rootPool + "-00000000000000000000000000000000", "mount-tmp-nowhere"} {
		if err := a.delete(id); err != nil {
			t.Errorf("DeleteVolume(unknown %s): %v, want OK", id, err)
		}
	}
	for _, params := range []map[string]string{{"pool": rootPool}, {"kind": "path"}} {
		before := a.mustCapacity(params)
		v := a.mustCreate(newUUID(), before, params)
		if n := a.mustCapacity(params); n != 0 {
			t.Errorf("GetCapacity(%v) = %d with the pool used up", params, n)
		}
		for i := range 2 {
			if err := a.delete(v.GetVolumeId()); err != nil {
				t.Errorf("DeleteVolume #%d of %s: %v", i+1, v.GetVolumeId(), err)
			}
		}
		if n := a.mustCapacity(params); n != before {
			t.Errorf("GetCapacity(%v) = %d after DeleteVolume, want %d back", params, n, before)
		}
		a.restart()
		if err := a.delete(v.GetVolumeId()); err != nil {
			t.Errorf("DeleteVolume of %s after a restart: %v", v.GetVolumeId(), err)
		}
		if _, ok := a.list()[v.GetVolumeId()]; ok {
			t.Errorf("deleted volume %s is listed after a restart", v.GetVolumeId())
		}
		if n := a.mustCapacity(params); n != before {
			t.Errorf("GetCapacity(%v) = %d after a restart, want %d", params, n, before)
		}
	}
}

// TestMesos13_ValidatePreExistingDisk imports pre-existing disks the way
// Mesos does: ValidateVolumeCapabilities with the context from ListVolumes,
// the profile's one capability and parameters.
func TestMesos13_ValidatePreExistingDisk(t *testing.T) {
	a := startAgent(t, setup{RootMB: 64, Mounts: []int{32}})
	id := a.diskID(0)
	listed, ok := a.list()[id]
	if !ok {
		t.Fatalf("pre-existing disk %s is not listed", id)
	}
	vctx := listed.GetVolumeContext()
	for _, params := range []map[string]string{{"pool": mountPool}, {"kind": "mount"}, {}} {
		for _, c := range []*csi.VolumeCapability{snw, sro} {
			resp, err := a.validate(id, vctx, c, params)
			if err != nil {
				t.Errorf("ValidateVolumeCapabilities(%v, %v): %v", c, params, err)
				continue
			}
			want := &csi.ValidateVolumeCapabilitiesResponse_Confirmed{
				VolumeContext: vctx, VolumeCapabilities: []*csi.VolumeCapability{c}, Parameters: params}
			if !proto.Equal(resp.GetConfirmed(), want) {
				t.Errorf("ValidateVolumeCapabilities(%v, %v) confirmed %v, want the request echoed: %v", c, params, resp.GetConfirmed(), want)
			}
		}
	}
	for _, tc := range []struct {
		what   string
		cap    *csi.VolumeCapability
		params map[string]string
	}{
		{"block", blockCap(), map[string]string{"pool": mountPool}},
		{"multi-node", mountCap(csi.VolumeCapability_AccessMode_MULTI_NODE_MULTI_WRITER), map[string]string{"pool": mountPool}},
		{"another pool's profile", snw, map[string]string{"pool": rootPool}},
	} {
		resp, err := a.validate(id, vctx, tc.cap, tc.params)
		if err != nil || resp.GetConfirmed() != nil || resp.GetMessage() == "" {
			t.Errorf("ValidateVolumeCapabilities(%s) = %v, %v; want OK with a message and nothing confirmed", tc.what, resp, err)
		}
	}
	_, err := a.validate("mount-no-such-disk", vctx, snw, map[string]string{"pool": mountPool})
	wantCode(t, "ValidateVolumeCapabilities of an unknown ID", err, codes.NotFound)
}

// TestMesos14_MountDisksAsPreExisting serves whole disks as Mesos's
// pre-existing disks: each listed with a stable ID and its full size,
// GetCapacity 0, importable with the data already on it, wiped by
// DeleteVolume and listed again.
func TestMesos14_MountDisksAsPreExisting(t *testing.T) {
	a := startAgent(t, setup{Mounts: []int{32, 48}})
	want := map[string]int64{a.diskID(0): fsSize(t, a.mountRoots[0]), a.diskID(1): fsSize(t, a.mountRoots[1])}
	check := func(when string) {
		t.Helper()
		got := map[string]int64{}
		for id, v := range a.list() {
			got[id] = v.GetCapacityBytes()
		}
		if !maps.Equal(got, want) {
			t.Errorf("%s: ListVolumes = %v, want each disk with its size %v", when, got, want)
		}
		for _, params := range []map[string]string{{"pool": mountPool}, {"kind": "mount"}} {
			if n := a.mustCapacity(params); n != 0 {
				t.Errorf("%s: GetCapacity(%v) = %d, want 0 (the disks are offered as pre-existing)", when, params, n)
			}
		}
	}
	check("at start")
	slices.Reverse(a.res)
	a.writeResources()
	a.restart()
	check("after reordering the resources")

	id := a.diskID(1)
	writeFile(t, filepath.Join(a.mountRoots[1], "old-data"), "kept on import")
	vctx := a.list()[id].GetVolumeContext()
	if resp, err := a.validate(id, vctx, snw, map[string]string{"pool": mountPool}); err != nil || resp.GetConfirmed() == nil {
		t.Fatalf("importing %s: %v, %v", id, resp, err)
	}
	a.mustMount(id, vctx)
	wantFile(t, filepath.Join(a.target(id), "old-data"), "kept on import")
	if err := os.MkdirAll(filepath.Join(a.target(id), "app", "db"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(a.target(id), "app", "db", "table"), "rows")
	a.mustUnmount(id)
	a.removeMountPath(id)
	if err := a.delete(id); err != nil {
		t.Fatalf("DeleteVolume(%s): %v", id, err)
	}
	if left := entries(t, a.mountRoots[1]); !slices.Equal(left, []string{"lost+found"}) {
		t.Errorf("disk holds %q after DeleteVolume, want only lost+found", left)
	}
	if left := entries(t, filepath.Join(a.mountRoots[1], "lost+found")); len(left) != 0 {
		t.Errorf("lost+found holds %q after DeleteVolume", left)
	}
	check("after DeleteVolume")
}
