package kubernetes

import (
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/localdisk-csi/localdisk/test/e2e/cluster"
	"github.com/localdisk-csi/localdisk/test/testutil"
)

// dataFile is the file the tests write into a volume and read back.
const dataFile = "data"

func contextWithTimeout(e *env) (context.Context, context.CancelFunc) {
	return context.WithTimeout(e.ctx, rpcTimeout)
}

// randomData is 1 MiB of random bytes, different on every call.
func randomData(t *testing.T) []byte {
	t.Helper()
	b := make([]byte, mi)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// published stages and publishes volume id in the test's directory, as
// kubelet would for a pod, runs fn with the mounted directory, then
// unpublishes and unstages it.
func (e *env) published(t *testing.T, id string, fn func(dir string)) {
	t.Helper()
	base, err := os.MkdirTemp(e.dir, "pod")
	if err != nil {
		t.Fatal(err)
	}
	staging, target := filepath.Join(base, "staging"), filepath.Join(base, "target")
	if err := os.Mkdir(staging, 0o750); err != nil {
		t.Fatal(err)
	}
	call := func(what string, f func(ctx context.Context) error) {
		t.Helper()
		ctx, cancel := contextWithTimeout(e)
		defer cancel()
		if err := f(ctx); err != nil {
			t.Fatalf("%s of volume %s: %v", what, id, err)
		}
	}
	node := e.plugin.Node()
	call("NodeStageVolume", func(ctx context.Context) error {
		_, err := node.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{
			VolumeId: id, StagingTargetPath: staging, VolumeCapability: testutil.RWO})
		return err
	})
	defer call("NodeUnstageVolume", func(ctx context.Context) error {
		_, err := node.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: id, StagingTargetPath: staging})
		return err
	})
	call("NodePublishVolume", func(ctx context.Context) error {
		_, err := node.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{
			VolumeId: id, StagingTargetPath: staging, TargetPath: target, VolumeCapability: testutil.RWO})
		return err
	})
	defer call("NodeUnpublishVolume", func(ctx context.Context) error {
		_, err := node.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: id, TargetPath: target})
		return err
	})
	fn(target)
}

// writeData replaces the data file of volume id with data, synced.
func (e *env) writeData(t *testing.T, id string, data []byte) {
	t.Helper()
	e.published(t, id, func(dir string) {
		f, err := os.OpenFile(filepath.Join(dir, dataFile), os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Write(data); err != nil {
			t.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	})
}

// readData returns the data file of volume id.
func (e *env) readData(t *testing.T, id string) []byte {
	t.Helper()
	var data []byte
	e.published(t, id, func(dir string) {
		var err error
		if data, err = os.ReadFile(filepath.Join(dir, dataFile)); err != nil {
			t.Errorf("volume %s: %v", id, err)
		}
	})
	return data
}

// createPVCFrom creates a PVC like createPVC, made from source (its dataSource).
func (e *env) createPVCFrom(t *testing.T, name string, sc *storagev1.StorageClass, size int64, source *corev1.TypedLocalObjectReference) {
	t.Helper()
	pvc := e.pvcObject(name, sc, size)
	pvc.Spec.DataSource = source
	if _, err := e.Admin.CoreV1().PersistentVolumeClaims(e.ns).Create(e.ctx, pvc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating PVC %s: %v", name, err)
	}
}

// createSnapshot creates a VolumeSnapshot of PVC pvc in class.
func (e *env) createSnapshot(t *testing.T, name, class, pvc string) {
	t.Helper()
	if err := e.CreateVolumeSnapshot(e.ctx, e.ns, name, class, pvc); err != nil {
		t.Fatalf("creating VolumeSnapshot %s: %v", name, err)
	}
}

// waitSnapshotReady waits until VolumeSnapshot name is ready to use and
// returns its VolumeSnapshotContent.
func (e *env) waitSnapshotReady(t *testing.T, name string) *cluster.SnapshotContent {
	t.Helper()
	var content string
	e.waitFor(t, "VolumeSnapshot "+name+" ready to use", func() (bool, string) {
		var ready bool
		var why string
		ready, content, why = e.SnapshotReady(e.ctx, e.ns, name)
		return ready, why
	})
	c, err := e.GetSnapshotContent(e.ctx, content)
	if err != nil {
		t.Fatalf("VolumeSnapshotContent %s: %v", content, err)
	}
	return c
}

// deleteSnapshot deletes VolumeSnapshot name and waits until it and its
// VolumeSnapshotContent are gone (deletionPolicy Delete).
func (e *env) deleteSnapshot(t *testing.T, name string) {
	t.Helper()
	_, content, _ := e.SnapshotReady(e.ctx, e.ns, name)
	if err := e.Dynamic.Resource(cluster.VolumeSnapshots).Namespace(e.ns).Delete(e.ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("deleting VolumeSnapshot %s: %v", name, err)
	}
	e.waitFor(t, "VolumeSnapshot "+name+" and its content deleted", func() (bool, string) {
		return e.SnapshotGone(e.ctx, e.ns, name, content)
	})
}

// checkMountRefuses checks that a MOUNT volume (a whole disk) is refused a
// snapshot, which reports the plugin's error in the VolumeSnapshot's
// status, and a clone, whose PVC stays Pending with ProvisioningFailed
// events; then it deletes what it made.
func (e *env) checkMountRefuses(t *testing.T, snapClass string) {
	t.Helper()
	e.createPVC(t, "disk", e.class(t, "localdisk-mount"), 16*mi)
	e.waitBound(t, "disk")
	e.createSnapshot(t, "disk-snap", snapClass, "disk")
	snapshots := e.Dynamic.Resource(cluster.VolumeSnapshots).Namespace(e.ns)
	e.waitFor(t, "VolumeSnapshot disk-snap failed", func() (bool, string) {
		s, err := snapshots.Get(e.ctx, "disk-snap", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		ready, _, _ := unstructured.NestedBool(s.Object, "status", "readyToUse")
		msg, _, _ := unstructured.NestedString(s.Object, "status", "error", "message")
		if ready {
			t.Fatal("VolumeSnapshot disk-snap of a MOUNT volume is ready to use")
		}
		if msg != "" {
			t.Logf("VolumeSnapshot disk-snap: %s", msg)
		}
		return msg != "", "no status.error yet"
	})
	e.createPVCFrom(t, "disk-clone", e.class(t, "localdisk-mount"), 16*mi, &corev1.TypedLocalObjectReference{
		Kind: "PersistentVolumeClaim", Name: "disk",
	})
	e.waitFor(t, "PVC disk-clone ProvisioningFailed", func() (bool, string) {
		pvc, err := e.Admin.CoreV1().PersistentVolumeClaims(e.ns).Get(e.ctx, "disk-clone", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		if pvc.Status.Phase != corev1.ClaimPending {
			t.Fatalf("PVC disk-clone, a clone of a MOUNT volume, is %s", pvc.Status.Phase)
		}
		ev := e.events(t, pvc)
		return strings.Contains(ev, "ProvisioningFailed"), "events:" + ev
	})
	e.deletePVCs(t, "disk-clone")
	e.deleteSnapshot(t, "disk-snap")
	e.deletePVCs(t, "disk")
}
