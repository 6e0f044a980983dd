package kubernetes

import (
	"context"
	"fmt"
	"maps"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	deploy "github.com/localdisk-csi/localdisk/deploy/kubernetes"
	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/test/e2e/cluster"
)

const (
	// waitTimeout bounds each wait for the cluster to converge.
	waitTimeout = 2 * time.Minute
	// rpcTimeout bounds each call to the plugin (the API server's are
	// bounded by the client's Timeout).
	rpcTimeout = 30 * time.Second
	// annSelectedNode is what the scheduler sets on a WaitForFirstConsumer
	// PVC once it has picked a node.
	annSelectedNode = "volume.kubernetes.io/selected-node"
	// driverLabel marks the CSIStorageCapacity objects of a driver.
	driverLabel = "csi.storage.k8s.io/drivername"
)

// waitFor polls cond until it reports done, failing the test with cond's
// last explanation after waitTimeout. It also fails as soon as a component
// has exited.
func (e *env) waitFor(t *testing.T, what string, cond func() (done bool, why string)) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		for _, p := range append([]*cluster.Process{e.provisioner, e.KCM, e.APIServer}, e.others...) {
			p.CheckRunning(t)
		}
		if !e.plugin.Running() {
			t.Fatalf("the plugin exited\n%s", e.plugin.LogTail())
		}
		done, why := cond()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %s", what, waitTimeout, why)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// pluginCapacity is the plugin's own GetCapacity answer for a
// StorageClass's parameters on the node.
func (e *env) pluginCapacity(t *testing.T, sc *storagev1.StorageClass) (available, maximum int64) {
	t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, rpcTimeout)
	defer cancel()
	resp, err := e.plugin.Controller().GetCapacity(ctx, &csi.GetCapacityRequest{
		Parameters:         sc.Parameters,
		AccessibleTopology: &csi.Topology{Segments: e.segment},
	})
	if err != nil {
		t.Fatalf("GetCapacity(%v): %v", sc.Parameters, err)
	}
	return resp.GetAvailableCapacity(), resp.GetMaximumVolumeSize().GetValue()
}

// capacities returns the driver's CSIStorageCapacity objects by
// StorageClass, and a description of a class with more than one object
// ("" when none): csi-provisioner's capacity controller may briefly hold a
// duplicate it then deletes, so callers wait for that to settle.
func (e *env) capacities(t *testing.T) (map[string]storagev1.CSIStorageCapacity, string) {
	t.Helper()
	list, err := e.Admin.StorageV1().CSIStorageCapacities(deploy.Namespace).List(e.ctx,
		metav1.ListOptions{LabelSelector: driverLabel + "=" + deploy.DriverName})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]storagev1.CSIStorageCapacity{}
	dup := ""
	for _, c := range list.Items {
		if o, ok := out[c.StorageClassName]; ok {
			dup = fmt.Sprintf("two CSIStorageCapacity objects for StorageClass %s: %s (created %v) and %s (created %v)",
				c.StorageClassName, o.Name, o.CreationTimestamp, c.Name, c.CreationTimestamp)
		}
		out[c.StorageClassName] = c
	}
	return out, dup
}

// checkCapacity waits until the CSIStorageCapacity object of sc is on the
// node's topology, owned by the DaemonSet's pod, and shows the plugin's
// current GetCapacity answer; it returns the available capacity.
func (e *env) checkCapacity(t *testing.T, sc *storagev1.StorageClass) int64 {
	t.Helper()
	var available int64
	e.waitFor(t, "CSIStorageCapacity of "+sc.Name, func() (bool, string) {
		var maximum int64
		available, maximum = e.pluginCapacity(t, sc)
		all, dup := e.capacities(t)
		c, ok := all[sc.Name]
		switch {
		case dup != "":
			return false, dup
		case !ok:
			return false, "no object"
		case c.NodeTopology == nil || !maps.Equal(c.NodeTopology.MatchLabels, e.segment) ||
			len(c.NodeTopology.MatchExpressions) > 0:
			return false, fmt.Sprintf("node topology %v, want matchLabels %v", c.NodeTopology, e.segment)
		case len(c.OwnerReferences) != 1 || c.OwnerReferences[0].UID != e.pod.UID:
			return false, fmt.Sprintf("owners %v, want the pod %s", c.OwnerReferences, e.pod.Name)
		case c.Capacity == nil || c.Capacity.Value() != available:
			return false, fmt.Sprintf("capacity %v, the plugin says %d", c.Capacity, available)
		case c.MaximumVolumeSize == nil || c.MaximumVolumeSize.Value() != maximum:
			return false, fmt.Sprintf("maximumVolumeSize %v, the plugin says %d", c.MaximumVolumeSize, maximum)
		}
		return true, ""
	})
	return available
}

// pvcObject is a PVC of size bytes in StorageClass sc, with the scheduler's
// selected-node annotation for the node.
func (e *env) pvcObject(name string, sc *storagev1.StorageClass, size int64) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{
			Name: name, Namespace: e.ns,
			Annotations: map[string]string{annSelectedNode: nodeName},
		},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: ptr.To(sc.Name),
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceStorage: *resource.NewQuantity(size, resource.BinarySI),
			}},
		},
	}
}

// createPVC creates pvcObject(name, sc, size).
func (e *env) createPVC(t *testing.T, name string, sc *storagev1.StorageClass, size int64) {
	t.Helper()
	_, err := e.Admin.CoreV1().PersistentVolumeClaims(e.ns).Create(e.ctx, e.pvcObject(name, sc, size), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating PVC %s: %v", name, err)
	}
}

// waitBound waits until the PVC is bound and returns it with its PV.
func (e *env) waitBound(t *testing.T, name string) (*corev1.PersistentVolumeClaim, *corev1.PersistentVolume) {
	t.Helper()
	var pvc *corev1.PersistentVolumeClaim
	var pv *corev1.PersistentVolume
	e.waitFor(t, "PVC "+name+" bound", func() (bool, string) {
		var err error
		pvc, err = e.Admin.CoreV1().PersistentVolumeClaims(e.ns).Get(e.ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		if pvc.Status.Phase != corev1.ClaimBound {
			return false, fmt.Sprintf("phase %s, annotations %v", pvc.Status.Phase, pvc.Annotations)
		}
		pv, err = e.Admin.CoreV1().PersistentVolumes().Get(e.ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return pv.Status.Phase == corev1.VolumeBound, "PV phase " + string(pv.Status.Phase)
	})
	return pvc, pv
}

// deletePVCs deletes PVCs and waits until they and their PVs are gone.
func (e *env) deletePVCs(t *testing.T, names ...string) {
	t.Helper()
	pvs := map[string]string{} // PVC -> PV
	for _, name := range names {
		pvc, err := e.Admin.CoreV1().PersistentVolumeClaims(e.ns).Get(e.ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatalf("PVC %s: %v", name, err)
		}
		pvs[name] = pvc.Spec.VolumeName
		if err := e.Admin.CoreV1().PersistentVolumeClaims(e.ns).Delete(e.ctx, name, metav1.DeleteOptions{}); err != nil {
			t.Fatalf("deleting PVC %s: %v", name, err)
		}
	}
	for _, name := range names {
		e.waitFor(t, "PVC "+name+" and its PV deleted", func() (bool, string) {
			_, err := e.Admin.CoreV1().PersistentVolumeClaims(e.ns).Get(e.ctx, name, metav1.GetOptions{})
			if !apierrors.IsNotFound(err) {
				return false, fmt.Sprintf("PVC still there (%v)", err)
			}
			if pvs[name] == "" {
				return true, ""
			}
			pv, err := e.Admin.CoreV1().PersistentVolumes().Get(e.ctx, pvs[name], metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return true, ""
			}
			if err != nil {
				return false, err.Error()
			}
			return false, fmt.Sprintf("PV %s still there: phase %s, finalizers %v", pv.Name, pv.Status.Phase, pv.Finalizers)
		})
	}
}

// volumes returns the plugin's volumes (ListVolumes) by ID with their capacity.
func (e *env) volumes(t *testing.T) map[string]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, rpcTimeout)
	defer cancel()
	resp, err := e.plugin.Controller().ListVolumes(ctx, &csi.ListVolumesRequest{})
	if err != nil {
		t.Fatalf("ListVolumes: %v", err)
	}
	out := map[string]int64{}
	for _, v := range resp.GetEntries() {
		out[v.GetVolume().GetVolumeId()] = v.GetVolume().GetCapacityBytes()
	}
	return out
}

// checkPV checks a PV that the provisioner made for pvc of size bytes.
func (e *env) checkPV(t *testing.T, pvc *corev1.PersistentVolumeClaim, pv *corev1.PersistentVolume, size int64) {
	t.Helper()
	s := pv.Spec
	if s.CSI == nil || s.CSI.Driver != deploy.DriverName || s.CSI.VolumeHandle == "" {
		t.Fatalf("PV %s is not a %s volume: %+v", pv.Name, deploy.DriverName, s.PersistentVolumeSource)
	}
	if got := s.Capacity[corev1.ResourceStorage]; got.Value() != size {
		t.Errorf("PV %s capacity %s, want %d", pv.Name, got.String(), size)
	}
	if got := pvc.Status.Capacity[corev1.ResourceStorage]; got.Value() != size {
		t.Errorf("PVC %s capacity %s, want %d", pvc.Name, got.String(), size)
	}
	if s.ClaimRef == nil || s.ClaimRef.UID != pvc.UID || pvc.Spec.VolumeName != pv.Name {
		t.Errorf("PV %s and PVC %s are not bound to each other", pv.Name, pvc.Name)
	}
	if s.PersistentVolumeReclaimPolicy != corev1.PersistentVolumeReclaimDelete ||
		s.StorageClassName != *pvc.Spec.StorageClassName {
		t.Errorf("PV %s: reclaim policy %s, class %s", pv.Name, s.PersistentVolumeReclaimPolicy, s.StorageClassName)
	}
	want := corev1.NodeSelectorRequirement{Key: layout.TopologyKey, Operator: corev1.NodeSelectorOpIn, Values: []string{e.nodeID}}
	if s.NodeAffinity == nil || s.NodeAffinity.Required == nil || len(s.NodeAffinity.Required.NodeSelectorTerms) != 1 ||
		len(s.NodeAffinity.Required.NodeSelectorTerms[0].MatchExpressions) != 1 ||
		!equalRequirement(s.NodeAffinity.Required.NodeSelectorTerms[0].MatchExpressions[0], want) {
		t.Errorf("PV %s node affinity %v, want exactly %v", pv.Name, s.NodeAffinity, want)
	}
	if got, ok := e.volumes(t)[s.CSI.VolumeHandle]; !ok || got != size {
		t.Errorf("the plugin lists volume %s with %d bytes (listed: %v), want %d", s.CSI.VolumeHandle, got, ok, size)
	}
}

func equalRequirement(a, b corev1.NodeSelectorRequirement) bool {
	return a.Key == b.Key && a.Operator == b.Operator && strings.Join(a.Values, ",") == strings.Join(b.Values, ",")
}

// checkNoForbidden fails the test if csi-provisioner (or another sidecar
// given) was ever refused by the API server: the manifests' RBAC must grant
// all they need.
func (e *env) checkNoForbidden(t *testing.T, more ...*cluster.Process) {
	t.Helper()
	for _, p := range append([]*cluster.Process{e.provisioner}, more...) {
		data, err := os.ReadFile(p.Log)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(data), "\n") {
			if strings.Contains(line, "forbidden") || strings.Contains(line, "Forbidden") {
				t.Errorf("%s was refused by RBAC: %s", p.Name, line)
			}
		}
	}
}
