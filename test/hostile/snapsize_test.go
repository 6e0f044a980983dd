package hostile

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/localdisk-csi/localdisk/test/testutil"
)

// writeData writes n bytes of data (synced) to path, returning what was
// written and the error that stopped it.
func writeData(path string, n int64) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(i * 13)
	}
	var done int64
	for done < n {
		w, err := f.Write(buf[:min(int64(len(buf)), n-done)])
		done += int64(w)
		if err == nil {
			err = f.Sync()
		}
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// refusedCleanly calls CreateVolume name from src in pool with cr and
// checks that it fails with one of codes, a message of at most 2 KiB, and
// leaves nothing: no volume listed, no directory, record or intent, the
// pool's capacity unchanged.
func (e *snapEnv) refusedCleanly(what, name, pool string, cr *csi.CapacityRange, src *csi.VolumeContentSource, want ...codes.Code) {
	t := e.t
	t.Helper()
	before := e.leftovers(pool)
	avail, _, err := e.Capacity(pool)
	e.Must(err, "GetCapacity")
	v, err := e.createFrom(name, pool, cr, src)
	if !slices.Contains(want, status.Code(err)) {
		t.Errorf("%s: CreateVolume: %v (volume %v); want one of %v", what, err, v, want)
	}
	if err == nil {
		defer func() { e.Must(e.Delete(v.GetVolumeId()), "delete "+name) }()
	}
	// The message travels in a header and is logged: a path deeper than
	// PATH_MAX is not spelled out in it.
	if n := len(status.Convert(err).Message()); n > 2048 {
		t.Errorf("%s: an error message of %d bytes", what, n)
	}
	t.Logf("%s: %v", what, err)
	e.sameLeftovers(what, e.leftovers(pool), before)
	if now, _, err := e.Capacity(pool); err != nil || now != avail {
		t.Errorf("%s: GetCapacity %d (%v) after the failure, was %d", what, now, err, avail)
	}
	vols, err := e.List()
	e.Must(err, "ListVolumes")
	if len(vols) != len(before["volume records"]) {
		t.Errorf("%s: %d volumes listed, %d before", what, len(vols), len(before["volume records"]))
	}
}

// TestSnapshot_SmallerTarget, on btrfs with qgroups (the pool that
// enforces capacities on this host): a volume made from a snapshot or a
// volume gets at least the source's capacity. A limit_bytes below it is
// OUT_OF_RANGE and leaves nothing; a required_bytes below it (no limit)
// is raised to it, and that capacity is enforced on the restored data.
func TestSnapshot_SmallerTarget(t *testing.T) {
	e := newSnapEnv(t, btrfsQuota)
	pool := testutil.PathPool
	src := e.MustCreate("src", 16*testutil.MiB, poolParams(pool)).GetVolumeId()
	v := e.publish(src)
	if n, err := writeData(filepath.Join(v.target, "big"), 10*testutil.MiB); err != nil {
		t.Fatalf("writing 10 MiB into a 16 MiB volume: %d, %v", n, err)
	}
	snap := e.mustSnapshot("snap", src)
	small := &csi.CapacityRange{RequiredBytes: 4 * testutil.MiB, LimitBytes: 4 * testutil.MiB}
	e.refusedCleanly("restore with limit_bytes below the source's capacity", "small-restore", pool, small,
		fromSnapshot(snap.GetSnapshotId()), codes.OutOfRange)
	e.refusedCleanly("clone with limit_bytes below the source's capacity", "small-clone", pool, small,
		fromVolume(src), codes.OutOfRange)

	raised, err := e.createFrom("raised", pool, &csi.CapacityRange{RequiredBytes: 4 * testutil.MiB}, fromSnapshot(snap.GetSnapshotId()))
	e.Must(err, "restore with required_bytes below the source's capacity")
	if got := raised.GetCapacityBytes(); got != 16*testutil.MiB {
		t.Errorf("restore asked for 4 MiB: capacity %d, want the source's 16 MiB", got)
	}
	r := e.publish(raised.GetVolumeId())
	if data, err := os.ReadFile(filepath.Join(r.target, "big")); err != nil || len(data) != 10*testutil.MiB {
		t.Errorf("restored data: %d bytes, %v", len(data), err)
	}
	// The restored volume holds 10 MiB of its 16: 10 more do not fit.
	n, err := writeData(filepath.Join(r.target, "more"), 10*testutil.MiB)
	if !errors.Is(err, syscall.EDQUOT) && !errors.Is(err, syscall.ENOSPC) {
		t.Errorf("writing 10 MiB more into the restored volume: %d bytes, %v; want EDQUOT (its capacity enforced)", n, err)
	}
	e.teardownAll(pool, []vol{v, r}, nil, []string{snap.GetSnapshotId()})
}

// TestSnapshot_DataOverLimit: a source holding more than its capacity (a
// btrfs pool whose capacities were accounted only, then made to enforce
// them: quota off, then required) is restored and cloned into volumes
// whose limit, set before any data lands, its data exceeds. The copy fails
// with the code the design gives a copy over the target's quota,
// OUT_OF_RANGE, and leaves nothing.
func TestSnapshot_DataOverLimit(t *testing.T) {
	sp := btrfsQuota
	sp.quota = "off"
	e := newSnapEnv(t, sp)
	pool := testutil.PathPool
	src := e.MustCreate("src", 4*testutil.MiB, poolParams(pool)).GetVolumeId()
	v := e.publish(src)
	if n, err := writeData(filepath.Join(v.target, "big"), 12*testutil.MiB); err != nil {
		t.Fatalf("writing 12 MiB into a 4 MiB volume that is not enforced: %d, %v", n, err)
	}
	snap := e.mustSnapshot("snap", src)
	sp.quota = "required"
	e.Config = testutil.WriteConfig(t, e.Dir, e.config(sp))
	e.P.Restart()
	e.refusedCleanly("restore of 12 MiB into 4 MiB", "restore", pool, nil, fromSnapshot(snap.GetSnapshotId()),
		codes.OutOfRange)
	e.refusedCleanly("clone of 12 MiB into 4 MiB", "clone", pool, nil, fromVolume(src), codes.OutOfRange)
	e.teardownAll(pool, []vol{v}, nil, []string{snap.GetSnapshotId()})
}

// TestSnapshot_FilesystemFull: on ext4 with `snapshots: copy`, where
// capacities are accounted only, a source holds more than its capacity
// (40 MiB in 8); its snapshot fits the 128 MiB disk, a restore or a clone
// does not, though the 8 MiB the target is charged fit what the pool still
// has: the copy fails midway with RESOURCE_EXHAUSTED (the design's code for
// a full filesystem), and nothing is left.
func TestSnapshot_FilesystemFull(t *testing.T) {
	e := newSnapEnv(t, snapPool{fstype: "ext4", mib: 128, cap: 100})
	pool := testutil.PathPool
	src := e.MustCreate("src", 8*testutil.MiB, poolParams(pool)).GetVolumeId()
	v := e.publish(src)
	if n, err := writeData(filepath.Join(v.target, "big"), 40*testutil.MiB); err != nil {
		t.Fatalf("writing 40 MiB into an 8 MiB volume that is not enforced: %d, %v", n, err)
	}
	snap := e.mustSnapshot("snap", src)
	e.refusedCleanly("restore that does not fit the filesystem", "restore", pool, nil,
		fromSnapshot(snap.GetSnapshotId()), codes.ResourceExhausted)
	e.refusedCleanly("clone that does not fit the filesystem", "clone", pool, nil, fromVolume(src), codes.ResourceExhausted)
	e.teardownAll(pool, []vol{v}, nil, []string{snap.GetSnapshotId()})
}

// TestSnapshot_NoRoomForSnapshot: the snapshot of a 10,000-level tree on
// an ext4 disk without the inodes for a copy of it (64 MiB: 16,384) runs
// out of them midway: CreateSnapshot answers RESOURCE_EXHAUSTED (at once
// or, the copy running in the background, on a repeated call), and
// nothing is left: no snapshot listed, no data, no record, no charge.
func TestSnapshot_NoRoomForSnapshot(t *testing.T) {
	e := newSnapEnv(t, snapPool{fstype: "ext4", mib: 64, cap: 40})
	pool := testutil.PathPool
	src := e.MustCreate("src", 8*testutil.MiB, poolParams(pool)).GetVolumeId()
	e.Must(plantDeep(e.VolumeDir(pool, src), depth), "planting the deep tree")
	before := e.leftovers(pool)
	avail, _, err := e.Capacity(pool)
	e.Must(err, "GetCapacity")
	s, err := e.snapshot("snap", src)
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("snapshot of a deep tree out of inodes: %v (%v); want RESOURCE_EXHAUSTED", err, s)
	}
	t.Logf("snapshot: %v", err)
	if n := len(status.Convert(err).Message()); n > 2048 {
		t.Errorf("an error message of %d bytes", n)
	}
	e.sameLeftovers("failed snapshot", e.leftovers(pool), before)
	if now, _, err := e.Capacity(pool); err != nil || now != avail {
		t.Errorf("GetCapacity %d (%v) after the failure, was %d", now, err, avail)
	}
	ctx, cancel := e.Ctx()
	defer cancel()
	r, err := e.P.Controller().ListSnapshots(ctx, &csi.ListSnapshotsRequest{})
	if err != nil || len(r.GetEntries()) != 0 {
		t.Errorf("ListSnapshots after the failure: %v, %v", r.GetEntries(), err)
	}
	e.teardownAll(pool, nil, []string{src}, nil)
}
