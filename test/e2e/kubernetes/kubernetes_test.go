package kubernetes

import (
	"fmt"
	"maps"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

const mi = int64(1) << 20

// TestKubernetes runs localdisk under the real csi-provisioner and
// kube-controller-manager. The steps share one cluster and run in order;
// each leaves the node as it found it.
func TestKubernetes(t *testing.T) {
	start := time.Now()
	e := setup(t)
	t.Logf("control plane, plugin and csi-provisioner started in %v", time.Since(start).Round(time.Millisecond))
	root, path, mount := e.class(t, "localdisk-root"), e.class(t, "localdisk-path"), e.class(t, "localdisk-mount")

	t.Run("CSIStorageCapacity per StorageClass", func(t *testing.T) {
		if got := e.checkCapacity(t, root); got != rootCapacity {
			t.Errorf("localdisk-root capacity %d, want the ROOT pool's %d", got, rootCapacity)
		}
		if got := e.checkCapacity(t, path); got <= 0 || got > pathDiskMiB*mi {
			t.Errorf("localdisk-path capacity %d, want the PATH pool's free space (0, %d]", got, pathDiskMiB*mi)
		}
		// No MOUNT pool on this node.
		if got := e.checkCapacity(t, mount); got != 0 {
			t.Errorf("localdisk-mount capacity %d, want 0 (no MOUNT pool)", got)
		}
		e.waitFor(t, "one CSIStorageCapacity object per StorageClass", func() (bool, string) {
			all, dup := e.capacities(t)
			if dup != "" {
				return false, dup
			}
			return len(all) == len(e.classes), fmt.Sprintf("%d objects, want %d", len(all), len(e.classes))
		})
	})

	t.Run("a PVC with a selected node is provisioned there and bound; capacity shrinks", func(t *testing.T) {
		before := e.checkCapacity(t, root)
		const size = 100 * mi
		e.createPVC(t, "root-1", root, size)
		pvc, pv := e.waitBound(t, "root-1")
		e.checkPV(t, pvc, pv, size)
		if got := e.checkCapacity(t, root); got != before-size {
			t.Errorf("localdisk-root capacity %d after a %d-byte volume, want %d", got, size, before-size)
		}
	})

	t.Run("a PVC larger than the node's free space is handed back to the scheduler", func(t *testing.T) {
		free := e.checkCapacity(t, root)
		if free+mi > rootCapacity {
			t.Fatalf("the previous step left %d bytes free: cannot ask for more than free but less than the pool", free)
		}
		e.checkHandedBack(t, "root-exhausted", root, free+mi)
	})

	t.Run("a PVC larger than the node's pool is handed back to the scheduler", func(t *testing.T) {
		e.checkHandedBack(t, "root-too-large", root, 2*rootCapacity)
	})

	t.Run("deleting a PVC deletes its volume and restores capacity", func(t *testing.T) {
		pvc, err := e.Admin.CoreV1().PersistentVolumeClaims(e.ns).Get(e.ctx, "root-1", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		pv, err := e.Admin.CoreV1().PersistentVolumes().Get(e.ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		e.deletePVCs(t, "root-1")
		if _, ok := e.volumes(t)[pv.Spec.CSI.VolumeHandle]; ok {
			t.Errorf("the plugin still lists volume %s after its PV was deleted", pv.Spec.CSI.VolumeHandle)
		}
		if got := e.checkCapacity(t, root); got != rootCapacity {
			t.Errorf("localdisk-root capacity %d after deleting every volume, want %d", got, rootCapacity)
		}
	})

	t.Run("20 PVCs at once all bind and the capacity adds up", func(t *testing.T) {
		e.checkMany(t, path, 20, 8*mi)
	})

	e.checkNoForbidden(t)
}

// checkHandedBack creates a PVC of size bytes that the node cannot hold and
// checks that csi-provisioner gives it back to the scheduler: it removes
// the selected-node annotation, and no volume is made. Then it deletes it.
func (e *env) checkHandedBack(t *testing.T, name string, sc *storagev1.StorageClass, size int64) {
	t.Helper()
	volumes := e.volumes(t)
	free := e.checkCapacity(t, sc)
	e.createPVC(t, name, sc, size)
	t.Cleanup(func() { e.deletePVCs(t, name) })
	e.waitFor(t, "selected-node annotation of "+name+" removed", func() (bool, string) {
		pvc, err := e.Admin.CoreV1().PersistentVolumeClaims(e.ns).Get(e.ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		_, selected := pvc.Annotations[annSelectedNode]
		return !selected, fmt.Sprintf("phase %s, annotations %v; events: %s", pvc.Status.Phase, pvc.Annotations, e.events(t, pvc))
	})
	pvc, err := e.Admin.CoreV1().PersistentVolumeClaims(e.ns).Get(e.ctx, name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if pvc.Status.Phase != corev1.ClaimPending || pvc.Spec.VolumeName != "" {
		t.Errorf("PVC %s is %s with volume %q, want Pending with none", name, pvc.Status.Phase, pvc.Spec.VolumeName)
	}
	if after := e.volumes(t); !maps.Equal(after, volumes) {
		t.Errorf("the plugin's volumes changed from %v to %v", volumes, after)
	}
	if got := e.checkCapacity(t, sc); got != free {
		t.Errorf("%s capacity %d, want it unchanged at %d", sc.Name, got, free)
	}
}

// events returns the events of a PVC, for messages.
func (e *env) events(t *testing.T, pvc *corev1.PersistentVolumeClaim) string {
	list, err := e.Admin.CoreV1().Events(pvc.Namespace).List(e.ctx, metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	s := ""
	for _, ev := range list.Items {
		if ev.InvolvedObject.UID == pvc.UID {
			s += fmt.Sprintf("\n  %s %s (x%d): %s", ev.Type, ev.Reason, ev.Count, ev.Message)
		}
	}
	return s
}

// checkMany creates n PVCs of size bytes at once, checks that they all bind
// and that the capacity drops by their sum, then deletes them and checks
// that it comes back.
func (e *env) checkMany(t *testing.T, sc *storagev1.StorageClass, n int, size int64) {
	t.Helper()
	before := e.checkCapacity(t, sc)
	volumesBefore := len(e.volumes(t))
	names := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range names {
		names[i] = fmt.Sprintf("many-%02d", i)
		wg.Go(func() {
			_, err := e.Admin.CoreV1().PersistentVolumeClaims(e.ns).Create(e.ctx, e.pvcObject(names[i], sc, size), metav1.CreateOptions{})
			if err != nil {
				errs <- fmt.Errorf("creating PVC %s: %w", names[i], err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	start := time.Now()
	var total int64
	handles := map[string]bool{}
	for _, name := range names {
		pvc, pv := e.waitBound(t, name)
		e.checkPV(t, pvc, pv, size)
		q := pv.Spec.Capacity[corev1.ResourceStorage]
		total += q.Value()
		handles[pv.Spec.CSI.VolumeHandle] = true
	}
	t.Logf("%d PVCs bound %v after they were created", n, time.Since(start).Round(time.Millisecond))
	if len(handles) != n || total != int64(n)*size {
		t.Errorf("%d distinct volumes of %d bytes in all, want %d of %d", len(handles), total, n, int64(n)*size)
	}
	if got := len(e.volumes(t)); got != volumesBefore+n {
		t.Errorf("the plugin lists %d volumes, want %d", got, volumesBefore+n)
	}
	if got := e.checkCapacity(t, sc); got != before-total {
		t.Errorf("%s capacity %d after %d volumes of %d bytes, want %d", sc.Name, got, n, size, before-total)
	}
	e.deletePVCs(t, names...)
	if got := e.checkCapacity(t, sc); got != before {
		t.Errorf("%s capacity %d after deleting the volumes, want %d", sc.Name, got, before)
	}
	if got := len(e.volumes(t)); got != volumesBefore {
		t.Errorf("the plugin lists %d volumes after deleting them, want %d", got, volumesBefore)
	}
}
