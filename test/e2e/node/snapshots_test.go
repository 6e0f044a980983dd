package node

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	deploy "github.com/localdisk-csi/localdisk/deploy/kubernetes"
	"github.com/localdisk-csi/localdisk/test/e2e/cluster"
)

// managedByLabel is what snapshot-controller, with
// --enable-distributed-snapshotting, labels a VolumeSnapshotContent with:
// the node of its volume, whose csi-snapshotter takes it.
const managedByLabel = "snapshot.storage.kubernetes.io/managed-by"

// checkSnapshots is scenario 11. The cluster's snapshot-controller and the
// DaemonSet's csi-snapshotter (both stopped when the scenario ends) take a
// VolumeSnapshot of a pod's PATH PVC (btrfs with quotas: a btrfs
// snapshot); the source then changes; a pod on a PVC restored from the
// snapshot reads the data of the snapshot, and a pod on a PVC cloned from
// the source reads its data now. It deletes everything it made.
func (e *env) checkSnapshots(t *testing.T) {
	e.StartSnapshotController(t, e.dir)
	snapshotter := e.StartSidecar(t, e.ctx, e.deployment, "csi-snapshotter", e.dir, e.Tools.Dir, e.plugin.Options().Endpoint)
	if len(e.deployment.SnapshotClasses) != 1 {
		t.Fatalf("the manifests have VolumeSnapshotClasses %v, want one", e.deployment.SnapshotClasses)
	}
	const size = 32 * mi
	e.startWriter(t, "snap-src", "localdisk-path", size, "echo snapshotted > "+mountPath+"/file")
	source := e.pvOf(t, "snap-src").Spec.CSI.VolumeHandle
	if err := e.CreateVolumeSnapshot(e.ctx, testNS, "snap-src", e.deployment.SnapshotClasses[0], "snap-src"); err != nil {
		t.Fatalf("creating VolumeSnapshot snap-src: %v", err)
	}
	var contentName string
	e.waitFor(t, "VolumeSnapshot snap-src ready to use", 2*time.Minute, func() (bool, string) {
		snapshotter.CheckRunning(t)
		var ready bool
		var why string
		ready, contentName, why = e.SnapshotReady(e.ctx, testNS, "snap-src")
		return ready, why
	})
	content, err := e.GetSnapshotContent(e.ctx, contentName)
	if err != nil {
		t.Fatal(err)
	}
	if content.Driver != deploy.DriverName || content.SourceVolume != source || content.Labels[managedByLabel] != nodeName {
		t.Errorf("VolumeSnapshotContent %s: driver %q, source %q, labels %v; want %s, %s and %s=%s",
			content.Name, content.Driver, content.SourceVolume, content.Labels, deploy.DriverName, source, managedByLabel, nodeName)
	}

	// The source changes after the snapshot.
	e.deletePod(t, "snap-src")
	e.createPod(t, "snap-change", "snap-src", "echo changed > "+mountPath+"/file && sync", podOptions{})
	e.waitPod(t, "snap-change", corev1.PodSucceeded, 3*time.Minute)
	e.deletePod(t, "snap-change")

	e.createPVCFrom(t, "snap-restored", "localdisk-path", size, false, &corev1.TypedLocalObjectReference{
		APIGroup: ptr.To(cluster.VolumeSnapshots.Group), Kind: "VolumeSnapshot", Name: "snap-src"})
	e.createPVCFrom(t, "snap-clone", "localdisk-path", size, false, &corev1.TypedLocalObjectReference{
		Kind: "PersistentVolumeClaim", Name: "snap-src"})
	for pvc, want := range map[string]string{"snap-restored": "snapshotted", "snap-clone": "changed"} {
		e.createPod(t, pvc, pvc, fmt.Sprintf(`cat %s/file; test "$(cat %s/file)" = %s`, mountPath, mountPath, want), podOptions{})
	}
	for _, pvc := range []string{"snap-restored", "snap-clone"} {
		e.waitPod(t, pvc, corev1.PodSucceeded, 4*time.Minute)
		if pv := e.pvOf(t, pvc); pv.Spec.CSI.VolumeHandle == source {
			t.Errorf("PVC %s is bound to the source's volume %s", pvc, source)
		}
		e.deletePod(t, pvc)
	}

	e.deletePVC(t, "snap-restored")
	e.deletePVC(t, "snap-clone")
	if err := e.Dynamic.Resource(cluster.VolumeSnapshots).Namespace(testNS).Delete(e.ctx, "snap-src", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("deleting VolumeSnapshot snap-src: %v", err)
	}
	e.waitFor(t, "VolumeSnapshot snap-src and its content deleted", 2*time.Minute, func() (bool, string) {
		return e.SnapshotGone(e.ctx, testNS, "snap-src", contentName)
	})
	e.deletePVC(t, "snap-src")
}
