package check

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/localdisk-csi/localdisk/driver/disk"
	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/mounter"
	"github.com/localdisk-csi/localdisk/driver/pool"
	snaps "github.com/localdisk-csi/localdisk/driver/snapshot"
	"github.com/localdisk-csi/localdisk/driver/volume"
)

// pool reports one pool as serve's start-up would find it.
func (r *run) pool(spec pool.Spec) {
	if spec.Kind.Directory() {
		r.dirPool(spec)
		return
	}
	r.mountPool(spec)
}

// dirPool reports a ROOT/PATH pool: where it is (a PATH pool's root should
// be its own mount), on which filesystem, whether its marker is the
// recorded one, and how capacities will be enforced.
func (r *run) dirPool(spec pool.Spec) {
	subject := "pool " + spec.Name
	in := volume.InspectPool(r.cfg.StateDir, spec, r.hasRecords(spec.Name))
	if in.Missing && spec.Optional && !r.hasRecords(spec.Name)() {
		r.ok(subject, "absent (optional): %s does not exist on this node; serve takes the pool into service when it appears", in.Dir)
		return
	}
	quotaFailed := in.Err != nil && spec.Quota == pool.QuotaRequired && in.Quota.Method == "" && in.Quota.Reason != nil
	if in.Err != nil && !quotaFailed {
		r.fail(subject, "%s pool at %s is unhealthy: %v", spec.Kind, in.Dir, in.Err)
		return
	}
	where := existingParent(in.Dir)
	fsType, mountPoint := r.mountOf(where)
	switch {
	case in.Missing:
		r.ok(subject, "%s does not exist yet: serve makes it (on %s at %s), a new pool", in.Dir, fsType, mountPoint)
	case disk.ReadOnlyFS(in.Dir):
		r.fail(subject, "%s is on a read-only mount (%s at %s): no volume can be made", in.Dir, fsType, mountPoint)
		return
	case spec.Kind == pool.Path && !disk.MountRoot(in.Dir):
		r.warn(subject, "%s is not its own mount: it is on %s at %s; serve uses it as it is (%s), so mount the pool's disk there first",
			in.Dir, fsType, mountPoint, markerState(in))
	default:
		mounted := "on the mount at " + mountPoint
		if mountPoint == in.Dir {
			mounted = "its own mount"
		}
		r.ok(subject, "%s at %s (%s), %s", fsType, in.Dir, mounted, markerState(in))
	}
	r.capacity(subject, spec, in, fsType)
	r.snapshots(subject, spec, in)
}

// snapshots reports how the pool makes snapshots and clones
// (driver/snapshot), as serve would decide once the pool is in service.
func (r *run) snapshots(subject string, spec pool.Spec, in volume.Inspection) {
	var dir *os.File
	if f, err := os.Open(existingParent(spec.Path)); err == nil {
		defer f.Close()
		dir = f
	}
	d := snaps.Decide(spec, in.Quota.Method, dir)
	switch d.Method {
	case snaps.Btrfs:
		r.ok(subject, "snapshots and clones: btrfs snapshots (instant)")
	case snaps.Reflink:
		r.ok(subject, "snapshots and clones: reflink (tree copies whose file data is shared)")
	case snaps.Copy:
		r.ok(subject, "snapshots and clones: full copies (snapshots: copy)")
	default:
		r.ok(subject, "snapshots and clones: none (%v)", d.Reason)
	}
}

// markerState says what start-up does with the pool's marker.
func markerState(in volume.Inspection) string {
	if in.Fresh {
		return "not initialised yet: serve initialises it"
	}
	return "its marker is the recorded one"
}

// capacity reports whether the pool's capacities will be enforced or only
// accounted, as capacity.Quotas.Setup decides.
func (r *run) capacity(subject string, spec pool.Spec, in volume.Inspection, fsType string) {
	q := in.Quota
	switch {
	case spec.Quota == pool.QuotaOff:
		r.ok(subject, "capacity accounted, not enforced (quota: off): usage is measured")
	case q.Method == "project":
		r.ok(subject, "capacity enforced by project quotas (%s with prjquota)", fsType)
	case q.Method == "btrfs" && q.EnableBtrfs:
		r.ok(subject, "capacity enforced by btrfs qgroups: quotas are off, serve enables them (quota: required)")
	case q.Method == "btrfs":
		r.ok(subject, "capacity enforced by btrfs qgroups")
	case spec.Quota == pool.QuotaRequired:
		r.fail(subject, "quota: required, but capacity cannot be enforced: %v; the pool is unhealthy%s", q.Reason, quotaHint(fsType))
	default:
		r.warn(subject, "capacity accounted, not enforced: %v; usage is measured%s", q.Reason, quotaHint(fsType))
		r.sharing(subject, spec, fsType)
	}
}

// sharing warns of a ROOT or PATH pool whose capacity is only accounted on
// the filesystem that kubelet's directory or the Mesos agent's work dir is
// on: volumes writing past their sizes then fill the node's own disk, and
// kubelet evicts every pod of the node (or the agent fails its tasks).
func (r *run) sharing(subject string, spec pool.Spec, fsType string) {
	where := existingParent(spec.Path)
	for what, dir := range map[string]string{"kubelet's directory": kubeletDir, "the Mesos agent's work dir": r.cfg.WorkDir} {
		if dir == "" || !sameFilesystem(where, dir) {
			continue
		}
		r.warn(subject, "it shares its filesystem with %s (%s) and its capacity is not enforced: volumes that write past "+
			"their sizes fill the node's disk, and kubelet evicts every pod below 10%% free; the pool keeps its reserve "+
			"(%s) free of new volumes, but only quotas hold volumes to their sizes%s", what, dir, reserveOf(spec), quotaHint(fsType))
	}
}

// kubeletDir is where kubelet keeps its data (KubeletDir; tests point it
// elsewhere, so that what they find does not depend on the machine).
var kubeletDir = KubeletDir

// sameFilesystem reports whether a and b (which must exist) are on one
// filesystem.
func sameFilesystem(a, b string) bool {
	var sa, sb unix.Stat_t
	return unix.Stat(a, &sa) == nil && unix.Stat(b, &sb) == nil && sa.Dev == sb.Dev
}

// reserveOf says what the pool keeps free.
func reserveOf(spec pool.Spec) string {
	switch {
	case spec.Reserve != nil:
		return "reserve: " + spec.Reserve.String()
	case spec.Kind == pool.Root:
		return "by default " + pool.DefaultRootReserve.String()
	}
	return "none"
}

// quotaHint says how to get enforcement on a filesystem type.
func quotaHint(fsType string) string {
	switch fsType {
	case "xfs":
		return " (mount it with -o prjquota to enforce)"
	case "ext4":
		return " (make it with -O quota,project and mount it with -o prjquota to enforce)"
	case "btrfs":
		return " (btrfs quota enable, or quota: required, to enforce)"
	}
	return " (XFS/ext4 with prjquota or btrfs enforce capacities)"
}

// mountPool reports a MOUNT pool's disks and whether the pool is healthy
// (at least one disk present, as refresh decides).
func (r *run) mountPool(spec pool.Spec) {
	subject := "pool " + spec.Name
	if spec.Optional && !slices.ContainsFunc(spec.Disks, diskThere) && !r.hasRecords(spec.Name)() {
		r.ok(subject, "absent (optional): none of its %d disks is on this node; serve takes the pool into service when one appears", len(spec.Disks))
		return
	}
	present := 0
	for _, d := range spec.Disks {
		if r.disk(spec, d) {
			present++
		}
	}
	if present == 0 {
		r.fail(subject, "mount pool: none of its %d disks is present: the pool is unhealthy", len(spec.Disks))
		return
	}
	r.ok(subject, "mount pool: %d of %d disks present", present, len(spec.Disks))
}

// diskThere reports, without a finding, whether a MOUNT pool's disk is on
// this node: its filesystem mounted, or its device there.
func diskThere(d pool.DiskSpec) bool {
	if d.Device == "" {
		return disk.MountRoot(canonical(d.Path))
	}
	return disk.BlockDevice(d.Device) == nil
}

// disk reports one disk of a MOUNT pool and whether it is present.
func (r *run) disk(spec pool.Spec, d pool.DiskSpec) bool {
	subject := "disk " + d.Source()
	if d.Device == "" {
		dir := canonical(d.Path)
		if !disk.MountRoot(dir) {
			r.warn(subject, "%s is not a mount point: the disk is not used until its filesystem is mounted there", dir)
			return false
		}
		fsType, _ := r.mountOf(dir)
		r.ok(subject, "%s mounted at %s", fsType, dir)
		return true
	}
	if err := disk.BlockDevice(d.Device); err != nil {
		r.warn(subject, "missing: %v; the disk is not used until it is there", err)
		return false
	}
	id, err := disk.ReadIdentity(d.Device)
	if err != nil {
		r.warn(subject, "%v: it is never handed out", err)
		return true
	}
	dev := canonical(d.Device)
	l, note := r.claims(spec, d, id)
	r.add(finding(l, subject, "block device %s, identity %s%s", dev, formatIdentity(id), note))
	r.deviceDisk(spec, d, subject)
	return true
}

// claims checks a present device against the records of the volumes made
// on it (by disk ID): it must carry their recorded identity, as deviceOf
// requires, unless another of the pool's devices does (a rename: the
// volume follows its disk).
func (r *run) claims(spec pool.Spec, d pool.DiskSpec, id map[string]string) (Level, string) {
	diskID := layout.DiskID(spec.Name, d.Source())
	for _, rec := range r.records() {
		if rec.Pool != spec.Name || layout.DiskOf(rec.ID) != diskID || len(rec.Identity) == 0 {
			continue
		}
		if disk.SameDisk(rec.Identity, id) {
			return OK, "; holds volume " + rec.ID
		}
		for _, o := range spec.Disks {
			if o.Device == "" || o.Device == d.Device {
				continue
			}
			if oid, err := disk.ReadIdentity(o.Device); err == nil && disk.SameDisk(rec.Identity, oid) {
				return OK, fmt.Sprintf("; volume %s's disk is now %s (renamed): the volume follows its disk", rec.ID, o.Device)
			}
		}
		return Fail, fmt.Sprintf("; not the disk of volume %s (%s), which is missing", rec.ID, formatIdentity(rec.Identity))
	}
	return OK, ""
}

// formatIdentity is key=value pairs in key order.
func formatIdentity(id map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(id)) {
		parts = append(parts, k+"="+id[k])
	}
	return strings.Join(parts, " ")
}

// mountOf is the filesystem type and mount point of the mount holding the
// existing path dir.
func (r *run) mountOf(dir string) (fsType, mountPoint string) {
	t, err := mounter.ReadTable()
	if err != nil {
		return "unknown filesystem", "?"
	}
	if e := t.Containing(canonical(dir)); e != nil {
		return e.FSType, e.Mountpoint
	}
	return "unknown filesystem", "?"
}

// canonical resolves symlinks where it can.
func canonical(p string) string {
	if c, err := filepath.EvalSymlinks(p); err == nil {
		return c
	}
	return p
}
