package kubernetes

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	deploy "github.com/localdisk-csi/localdisk/deploy/kubernetes"
	"github.com/localdisk-csi/localdisk/test/e2e/cluster"
	"github.com/localdisk-csi/localdisk/test/testutil"
)

const (
	// snapDiskMiB is the size of the loop disk of TestSnapshots's
	// PATH pool.
	snapDiskMiB = 256
	// mountDiskMiB is the size of the disk of its MOUNT pool.
	mountDiskMiB = 64
	// snapVolumeSize is the size of its PVCs.
	snapVolumeSize = 32 * mi
	// managedByLabel is what snapshot-controller, with
	// --enable-distributed-snapshotting, labels a VolumeSnapshotContent
	// with: the node of its volume, whose csi-snapshotter takes it.
	managedByLabel = "snapshot.storage.kubernetes.io/managed-by"
)

// snapshotPool is a PATH pool that TestSnapshots runs on.
type snapshotPool struct {
	name, fstype string
	options      string // more lines of the pool's spec
	mount        bool   // add a MOUNT pool and check that it refuses
}

// TestSnapshots runs localdisk's snapshots and clones under the real
// snapshot-controller, csi-snapshotter and csi-provisioner: a VolumeSnapshot
// of a bound PVC, a PVC restored from it and a PVC cloned from a PVC, each
// checked for the data written into its source (through the plugin's node
// service: there is no kubelet). It runs on two PATH pools, each with a
// cluster of its own: btrfs with quotas (its volumes are subvolumes, so the
// snapshots and clones are btrfs snapshots), with a MOUNT pool beside it,
// which refuses; and ext4 with `snapshots: copy` (full copies).
func TestSnapshots(t *testing.T) {
	for _, p := range []snapshotPool{
		{name: "btrfs", fstype: "btrfs", options: "  quota: required\n", mount: true},
		{name: "ext4 copy", fstype: "ext4", options: "  snapshots: copy\n"},
	} {
		t.Run(p.name, func(t *testing.T) { checkSnapshots(t, p) })
	}
}

// checkSnapshots is TestSnapshots on pool p. The steps share one cluster
// and run in order.
func checkSnapshots(t *testing.T, p snapshotPool) {
	start := time.Now()
	e := setupPools(t, func(dir string) string {
		disk := testutil.LoopDisk(t, dir, snapDiskMiB, p.fstype)
		config := fmt.Sprintf(`pools:
- name: root
  kind: root
  path: %s/root
  capacity: %d
- name: snap
  kind: path
  path: %s
%s`, dir, rootCapacity, disk, p.options)
		if p.mount {
			config += fmt.Sprintf(`- name: disks
  kind: mount
  disks:
  - path: %s
`, testutil.LoopDisk(t, dir, mountDiskMiB, "ext4"))
		}
		return config
	})
	snapshotter := e.startSnapshots(t)
	t.Logf("control plane, plugin, csi-provisioner, snapshot-controller and csi-snapshotter started in %v",
		time.Since(start).Round(time.Millisecond))
	if len(e.deployment.SnapshotClasses) != 1 {
		t.Fatalf("the manifests have VolumeSnapshotClasses %v, want one", e.deployment.SnapshotClasses)
	}
	snapClass := e.deployment.SnapshotClasses[0]
	path := e.class(t, "localdisk-path")

	e.createPVC(t, "source", path, snapVolumeSize)
	pvc, pv := e.waitBound(t, "source")
	e.checkPV(t, pvc, pv, snapVolumeSize)
	source := pv.Spec.CSI.VolumeHandle
	before := randomData(t)
	e.writeData(t, source, before)

	var snapshotID string
	if !t.Run("a VolumeSnapshot of a bound PVC becomes ready to use", func(t *testing.T) {
		began := time.Now()
		e.createSnapshot(t, "snap-1", snapClass, "source")
		content := e.waitSnapshotReady(t, "snap-1")
		t.Logf("VolumeSnapshot ready %v after it was created", time.Since(began).Round(time.Millisecond))
		snapshotID = e.checkSnapshotContent(t, content, source)
	}) {
		t.FailNow()
	}
	after := randomData(t)
	e.writeData(t, source, after) // the snapshot keeps before

	t.Run("a PVC restored from the VolumeSnapshot binds and holds the data of the snapshot", func(t *testing.T) {
		e.createPVCFrom(t, "restored", path, snapVolumeSize, &corev1.TypedLocalObjectReference{
			APIGroup: ptr.To(cluster.VolumeSnapshots.Group), Kind: "VolumeSnapshot", Name: "snap-1",
		})
		pvc, pv := e.waitBound(t, "restored")
		e.checkPV(t, pvc, pv, snapVolumeSize)
		if pv.Spec.CSI.VolumeHandle == source {
			t.Fatalf("the restored PVC is bound to the source's volume %s", source)
		}
		if got := e.readData(t, pv.Spec.CSI.VolumeHandle); !bytes.Equal(got, before) {
			t.Errorf("the restored volume holds %d bytes %.16x..., want the %d bytes %.16x... written before the snapshot",
				len(got), got, len(before), before)
		}
	})

	t.Run("a PVC cloned from a PVC binds and holds its data", func(t *testing.T) {
		e.createPVCFrom(t, "clone", path, snapVolumeSize, &corev1.TypedLocalObjectReference{
			Kind: "PersistentVolumeClaim", Name: "source",
		})
		pvc, pv := e.waitBound(t, "clone")
		e.checkPV(t, pvc, pv, snapVolumeSize)
		if pv.Spec.CSI.VolumeHandle == source {
			t.Fatalf("the clone is bound to the source's volume %s", source)
		}
		if got := e.readData(t, pv.Spec.CSI.VolumeHandle); !bytes.Equal(got, after) {
			t.Errorf("the clone holds %d bytes %.16x..., want the source's %d bytes %.16x...", len(got), got, len(after), after)
		}
		// The clone is a copy: a write to it leaves the source alone.
		e.writeData(t, pv.Spec.CSI.VolumeHandle, before)
		if got := e.readData(t, source); !bytes.Equal(got, after) {
			t.Errorf("writing to the clone changed the source: it holds %.16x..., want %.16x...", got, after)
		}
	})

	t.Run("deleting the VolumeSnapshot, then the PVCs, deletes the snapshot and the volumes", func(t *testing.T) {
		e.deletePVCs(t, "restored", "clone")
		e.deleteSnapshot(t, "snap-1")
		if listed := e.pluginSnapshots(t, snapshotID); len(listed) != 0 {
			t.Errorf("the plugin still lists snapshot %s after its VolumeSnapshot was deleted: %v", snapshotID, listed)
		}
		e.deletePVCs(t, "source")
		if v := e.volumes(t); len(v) != 0 {
			t.Errorf("the plugin still lists volumes %v after every PVC was deleted", v)
		}
	})

	if p.mount {
		t.Run("a MOUNT volume is refused a snapshot and a clone", func(t *testing.T) {
			e.checkMountRefuses(t, snapClass)
		})
	}

	e.checkNoForbidden(t, snapshotter)
}

// startSnapshots runs snapshot-controller, as the cluster's, and the
// DaemonSet's csi-snapshotter for the node; it returns the latter.
func (e *env) startSnapshots(t *testing.T) *cluster.Process {
	t.Helper()
	controller := e.StartSnapshotController(t, e.dir)
	snapshotter := e.StartSidecar(t, e.ctx, e.deployment, "csi-snapshotter", e.dir, e.tools.Dir, e.socket())
	e.others = append(e.others, controller, snapshotter)
	return snapshotter
}

// checkSnapshotContent checks the VolumeSnapshotContent of a ready
// VolumeSnapshot of the volume source: the node's csi-snapshotter took it
// with the plugin, which lists it. It returns the snapshot's ID.
func (e *env) checkSnapshotContent(t *testing.T, content *cluster.SnapshotContent, source string) string {
	t.Helper()
	if content.Driver != deploy.DriverName || content.SourceVolume != source || content.Handle == "" {
		t.Fatalf("VolumeSnapshotContent %s: driver %q, source volume %q, snapshot %q; want %s, %s and an ID",
			content.Name, content.Driver, content.SourceVolume, content.Handle, deploy.DriverName, source)
	}
	if content.Labels[managedByLabel] != nodeName {
		t.Errorf("VolumeSnapshotContent %s: label %s=%q, want the volume's node %s",
			content.Name, managedByLabel, content.Labels[managedByLabel], nodeName)
	}
	if content.RestoreSize != snapVolumeSize {
		t.Errorf("VolumeSnapshotContent %s: restoreSize %d, want the volume's %d", content.Name, content.RestoreSize, snapVolumeSize)
	}
	listed := e.pluginSnapshots(t, content.Handle)
	if len(listed) != 1 || listed[0].GetSourceVolumeId() != source || !listed[0].GetReadyToUse() {
		t.Errorf("the plugin lists %v for snapshot %s, want it, ready, of volume %s", listed, content.Handle, source)
	}
	return content.Handle
}

// pluginSnapshots is the plugin's ListSnapshots answer for one snapshot ID.
func (e *env) pluginSnapshots(t *testing.T, id string) []*csi.Snapshot {
	t.Helper()
	ctx, cancel := contextWithTimeout(e)
	defer cancel()
	resp, err := e.plugin.Controller().ListSnapshots(ctx, &csi.ListSnapshotsRequest{SnapshotId: id})
	if err != nil {
		t.Fatalf("ListSnapshots(%s): %v", id, err)
	}
	var out []*csi.Snapshot
	for _, s := range resp.GetEntries() {
		out = append(out, s.GetSnapshot())
	}
	return out
}
