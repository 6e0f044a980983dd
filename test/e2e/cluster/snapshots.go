package cluster

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/yaml"
)

// The resources of the snapshot CRDs (snapshot.storage.k8s.io/v1) and of
// CustomResourceDefinitions, for the dynamic client.
var (
	CRDs = schema.GroupVersionResource{
		Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}
	VolumeSnapshotClasses = schema.GroupVersionResource{
		Group: "snapshot.storage.k8s.io", Version: "v1", Resource: "volumesnapshotclasses"}
	VolumeSnapshotContents = schema.GroupVersionResource{
		Group: "snapshot.storage.k8s.io", Version: "v1", Resource: "volumesnapshotcontents"}
	VolumeSnapshots = schema.GroupVersionResource{
		Group: "snapshot.storage.k8s.io", Version: "v1", Resource: "volumesnapshots"}
)

// SnapshotCRDFiles are the files of the VolumeSnapshot CRDs in the tools'
// crds/ (hack/build-e2e-tools.sh copies them from external-snapshotter's
// client module).
var SnapshotCRDFiles = []string{
	"snapshot.storage.k8s.io_volumesnapshotclasses.yaml",
	"snapshot.storage.k8s.io_volumesnapshotcontents.yaml",
	"snapshot.storage.k8s.io_volumesnapshots.yaml",
}

// InstallSnapshotCRDs creates the VolumeSnapshot CRDs of the tools'
// release, as a cluster admin installs them (docs/kubernetes.md), and waits
// until the API server serves them. A second call does nothing.
func (c *Cluster) InstallSnapshotCRDs(t *testing.T, ctx context.Context) {
	t.Helper()
	for _, f := range SnapshotCRDFiles {
		path := filepath.Join(c.Tools.Dir, "crds", f)
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("the snapshot CRDs (rebuild the tools with hack/build-e2e-tools.sh): %v", err)
		}
		var crd unstructured.Unstructured
		if err := yaml.Unmarshal(data, &crd.Object); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		_, err = c.Dynamic.Resource(CRDs).Create(ctx, &crd, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatalf("creating CRD %s: %v", crd.GetName(), err)
		}
	}
	for _, gvr := range []schema.GroupVersionResource{VolumeSnapshotClasses, VolumeSnapshotContents, VolumeSnapshots} {
		deadline := time.Now().Add(ReadyTimeout)
		for {
			_, err := c.Dynamic.Resource(gvr).List(ctx, metav1.ListOptions{Limit: 1})
			if err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the API server does not serve %s within %v: %v", gvr, ReadyTimeout, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
}

// createUnstructured creates an object of deploy/kubernetes whose kind
// k8s.io/api lacks: the VolumeSnapshotClass.
func (c *Cluster) createUnstructured(t *testing.T, ctx context.Context, obj *unstructured.Unstructured) error {
	t.Helper()
	if gvk := obj.GroupVersionKind(); gvk.Group != VolumeSnapshotClasses.Group || gvk.Kind != "VolumeSnapshotClass" {
		return fmt.Errorf("the test does not know how to create a %s", gvk)
	}
	_, err := c.Dynamic.Resource(VolumeSnapshotClasses).Create(ctx, obj, metav1.CreateOptions{})
	return err
}

// StartSnapshotController runs the tools' snapshot-controller as the
// cluster's (a prerequisite of the snapshots, docs/kubernetes.md), with the
// flag the node-local csi-snapshotters need: --enable-distributed-snapshotting
// labels each VolumeSnapshotContent with the node of its volume. It runs as
// the admin (RBAC of the snapshot-controller is the cluster's, not
// localdisk's).
func (c *Cluster) StartSnapshotController(t *testing.T, dir string) *Process {
	t.Helper()
	kubeconfig := c.PKI.WriteKubeconfig(t, "snapshot-controller", c.URL, c.PKI.AdminToken)
	return StartProcess(t, dir, "snapshot-controller", nil, filepath.Join(c.Tools.Dir, "snapshot-controller"),
		"--kubeconfig="+kubeconfig, "--enable-distributed-snapshotting",
		// Only the three VolumeSnapshot CRDs are installed.
		"--feature-gates=CSIVolumeGroupSnapshot=false",
		"--leader-election=false", "--retry-interval-max=10s", "--v=3")
}

// CreateVolumeSnapshot creates the VolumeSnapshot ns/name of PVC pvc in
// the VolumeSnapshotClass class.
func (c *Cluster) CreateVolumeSnapshot(ctx context.Context, ns, name, class, pvc string) error {
	obj := &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": VolumeSnapshots.GroupVersion().String(),
		"kind":       "VolumeSnapshot",
		"metadata":   map[string]any{"name": name, "namespace": ns},
		"spec": map[string]any{
			"volumeSnapshotClassName": class,
			"source":                  map[string]any{"persistentVolumeClaimName": pvc},
		},
	}}
	_, err := c.Dynamic.Resource(VolumeSnapshots).Namespace(ns).Create(ctx, obj, metav1.CreateOptions{})
	return err
}

// SnapshotReady reports whether VolumeSnapshot ns/name is ready to use, the
// name of its VolumeSnapshotContent, and its status for messages.
func (c *Cluster) SnapshotReady(ctx context.Context, ns, name string) (ready bool, content, why string) {
	s, err := c.Dynamic.Resource(VolumeSnapshots).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return false, "", err.Error()
	}
	ready, _, _ = unstructured.NestedBool(s.Object, "status", "readyToUse")
	content, _, _ = unstructured.NestedString(s.Object, "status", "boundVolumeSnapshotContentName")
	status, _, _ := unstructured.NestedMap(s.Object, "status")
	return ready && content != "", content, fmt.Sprintf("status %v", status)
}

// SnapshotContent is what the tests read of a VolumeSnapshotContent.
type SnapshotContent struct {
	Name         string
	Labels       map[string]string
	Driver       string
	SourceVolume string // spec.source.volumeHandle
	Handle       string // status.snapshotHandle
	RestoreSize  int64  // status.restoreSize
}

// GetSnapshotContent reads the VolumeSnapshotContent name.
func (c *Cluster) GetSnapshotContent(ctx context.Context, name string) (*SnapshotContent, error) {
	u, err := c.Dynamic.Resource(VolumeSnapshotContents).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	out := &SnapshotContent{Name: u.GetName(), Labels: u.GetLabels()}
	out.Driver, _, _ = unstructured.NestedString(u.Object, "spec", "driver")
	out.SourceVolume, _, _ = unstructured.NestedString(u.Object, "spec", "source", "volumeHandle")
	out.Handle, _, _ = unstructured.NestedString(u.Object, "status", "snapshotHandle")
	out.RestoreSize, _, _ = unstructured.NestedInt64(u.Object, "status", "restoreSize")
	return out, nil
}

// SnapshotGone reports whether VolumeSnapshot ns/name and the
// VolumeSnapshotContent content ("" for none) are both deleted, and why not.
func (c *Cluster) SnapshotGone(ctx context.Context, ns, name, content string) (bool, string) {
	s, err := c.Dynamic.Resource(VolumeSnapshots).Namespace(ns).Get(ctx, name, metav1.GetOptions{})
	if err == nil {
		return false, fmt.Sprintf("VolumeSnapshot still there: finalizers %v", s.GetFinalizers())
	}
	if !apierrors.IsNotFound(err) {
		return false, err.Error()
	}
	if content == "" { // none was bound
		return true, ""
	}
	u, err := c.Dynamic.Resource(VolumeSnapshotContents).Get(ctx, content, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return true, ""
	}
	if err != nil {
		return false, err.Error()
	}
	status, _, _ := unstructured.NestedMap(u.Object, "status")
	return false, fmt.Sprintf("VolumeSnapshotContent %s still there: finalizers %v, status %v", content, u.GetFinalizers(), status)
}
