package node

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	deploy "github.com/localdisk-csi/localdisk/deploy/kubernetes"
	"github.com/localdisk-csi/localdisk/test/e2e/cluster"
)

// waitFor polls cond until it reports done, failing the test with cond's
// last explanation after timeout, or as soon as a component has exited.
func (e *env) waitFor(t *testing.T, what string, timeout time.Duration, cond func() (done bool, why string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, p := range []*cluster.Process{e.APIServer, e.KCM, e.scheduler, e.provisioner, e.kubelet.procOrNil(), e.cri.procOrNil()} {
			if p != nil {
				p.CheckRunning(t)
			}
		}
		if e.plugin != nil && !e.plugin.Running() {
			t.Fatalf("the plugin exited\n%s", e.plugin.LogTail())
		}
		done, why := cond()
		if done {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %s", what, timeout, why)
		}
		time.Sleep(300 * time.Millisecond)
	}
}

func (k *kubelet) procOrNil() *cluster.Process {
	if k == nil {
		return nil
	}
	return k.proc
}

func (c *containerd) procOrNil() *cluster.Process {
	if c == nil {
		return nil
	}
	return c.proc
}

// createPVC creates a PVC of size bytes in StorageClass class.
func (e *env) createPVC(t *testing.T, name, class string, size int64, block bool) {
	t.Helper()
	e.createPVCFrom(t, name, class, size, block, nil)
}

// createPVCFrom creates a PVC like createPVC, made from source (its
// dataSource: a VolumeSnapshot or a PVC) unless source is nil.
func (e *env) createPVCFrom(t *testing.T, name, class string, size int64, block bool, source *corev1.TypedLocalObjectReference) {
	t.Helper()
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNS},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce},
			StorageClassName: ptr.To(class),
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceStorage: *resource.NewQuantity(size, resource.BinarySI),
			}},
			DataSource: source,
		},
	}
	if block {
		pvc.Spec.VolumeMode = ptr.To(corev1.PersistentVolumeBlock)
	}
	if _, err := e.Admin.CoreV1().PersistentVolumeClaims(testNS).Create(e.ctx, pvc, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating PVC %s: %v", name, err)
	}
}

// podOptions shape a test pod.
type podOptions struct {
	readOnly bool   // mount the PVC read-only
	block    bool   // the PVC is a block device at devicePath
	user     *int64 // runAsUser and runAsGroup
	fsGroup  *int64
}

const (
	mountPath  = "/data"
	devicePath = "/dev/xvda"
)

// createPod creates a pod running script (sh -c) in the busybox image with
// the PVC pvc at mountPath (or devicePath). It never restarts: a failed
// check is a Failed pod.
func (e *env) createPod(t *testing.T, name, pvc, script string, o podOptions) *corev1.Pod {
	t.Helper()
	c := corev1.Container{
		Name: "c", Image: busyboxImage, ImagePullPolicy: corev1.PullNever,
		Command: []string{"sh", "-c", script},
	}
	if o.block {
		c.VolumeDevices = []corev1.VolumeDevice{{Name: "data", DevicePath: devicePath}}
	} else {
		c.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: mountPath}}
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: testNS},
		Spec: corev1.PodSpec{
			Containers:                    []corev1.Container{c},
			RestartPolicy:                 corev1.RestartPolicyNever,
			AutomountServiceAccountToken:  ptr.To(false),
			TerminationGracePeriodSeconds: ptr.To(int64(1)),
			SecurityContext:               &corev1.PodSecurityContext{RunAsUser: o.user, RunAsGroup: o.user, FSGroup: o.fsGroup},
			Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: pvc, ReadOnly: o.readOnly},
			}}},
		},
	}
	p, err := e.Admin.CoreV1().Pods(testNS).Create(e.ctx, pod, metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("creating pod %s: %v", name, err)
	}
	return p
}

// waitPod waits until the pod is in phase want; a pod that ends in another
// phase fails the test at once, with its container's log.
func (e *env) waitPod(t *testing.T, name string, want corev1.PodPhase, timeout time.Duration) *corev1.Pod {
	t.Helper()
	var pod *corev1.Pod
	e.waitFor(t, "pod "+name+" "+string(want), timeout, func() (bool, string) {
		var err error
		pod, err = e.Admin.CoreV1().Pods(testNS).Get(e.ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		if pod.Status.Phase == want {
			return true, ""
		}
		if pod.Status.Phase == corev1.PodFailed || (pod.Status.Phase == corev1.PodSucceeded && want == corev1.PodRunning) {
			t.Fatalf("pod %s is %s, want %s: %s\ncontainer log:\n%s", name, pod.Status.Phase, want, podStatus(pod), e.containerLog(pod))
		}
		return false, fmt.Sprintf("phase %s: %s; events: %s", pod.Status.Phase, podStatus(pod), e.events(pod.UID))
	})
	return pod
}

// podStatus summarizes a pod's conditions and container states.
func podStatus(p *corev1.Pod) string {
	var b strings.Builder
	for _, c := range p.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			fmt.Fprintf(&b, "%s=%s (%s: %s) ", c.Type, c.Status, c.Reason, c.Message)
		}
	}
	for _, s := range p.Status.ContainerStatuses {
		switch {
		case s.State.Waiting != nil:
			fmt.Fprintf(&b, "%s waiting: %s %s ", s.Name, s.State.Waiting.Reason, s.State.Waiting.Message)
		case s.State.Terminated != nil:
			fmt.Fprintf(&b, "%s terminated: exit %d %s %s ", s.Name, s.State.Terminated.ExitCode, s.State.Terminated.Reason, s.State.Terminated.Message)
		}
	}
	return b.String()
}

// containerLog returns the pod's container logs, as kubelet wrote them.
func (e *env) containerLog(p *corev1.Pod) string {
	files, _ := filepath.Glob(filepath.Join(e.kubelet.logDir, testNS+"_"+p.Name+"_"+string(p.UID), "*", "*.log"))
	var b strings.Builder
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, "%s:\n%s", f, data)
	}
	return b.String()
}

// events returns the events of an object, for messages.
func (e *env) events(uid any) string {
	list, err := e.Admin.CoreV1().Events(testNS).List(e.ctx, metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	s := ""
	for _, ev := range list.Items {
		if fmt.Sprint(ev.InvolvedObject.UID) == fmt.Sprint(uid) {
			s += fmt.Sprintf("\n  %s %s (x%d): %s", ev.Type, ev.Reason, ev.Count, ev.Message)
		}
	}
	return s
}

// deletePod deletes a pod and waits until it is gone.
func (e *env) deletePod(t *testing.T, name string) {
	t.Helper()
	err := e.Admin.CoreV1().Pods(testNS).Delete(e.ctx, name, metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(1))})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatalf("deleting pod %s: %v", name, err)
	}
	e.waitFor(t, "pod "+name+" deleted", 2*time.Minute, func() (bool, string) {
		p, err := e.Admin.CoreV1().Pods(testNS).Get(e.ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, ""
		}
		if err != nil {
			return false, err.Error()
		}
		return false, fmt.Sprintf("phase %s: %s", p.Status.Phase, podStatus(p))
	})
}

// deletePVC deletes a PVC and waits until it and its PV are gone; it
// returns the PV as it was.
func (e *env) deletePVC(t *testing.T, name string) *corev1.PersistentVolume {
	t.Helper()
	pv := e.pvOf(t, name)
	if err := e.Admin.CoreV1().PersistentVolumeClaims(testNS).Delete(e.ctx, name, metav1.DeleteOptions{}); err != nil {
		t.Fatalf("deleting PVC %s: %v", name, err)
	}
	e.waitFor(t, "PVC "+name+" and its PV deleted", 2*time.Minute, func() (bool, string) {
		_, err := e.Admin.CoreV1().PersistentVolumeClaims(testNS).Get(e.ctx, name, metav1.GetOptions{})
		if !apierrors.IsNotFound(err) {
			return false, fmt.Sprintf("PVC still there (%v)", err)
		}
		if pv == nil {
			return true, ""
		}
		p, err := e.Admin.CoreV1().PersistentVolumes().Get(e.ctx, pv.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return true, ""
		}
		if err != nil {
			return false, err.Error()
		}
		return false, fmt.Sprintf("PV %s: phase %s, finalizers %v", p.Name, p.Status.Phase, p.Finalizers)
	})
	return pv
}

// pvOf returns the PV bound to a PVC, or nil.
func (e *env) pvOf(t *testing.T, pvc string) *corev1.PersistentVolume {
	t.Helper()
	c, err := e.Admin.CoreV1().PersistentVolumeClaims(testNS).Get(e.ctx, pvc, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("PVC %s: %v", pvc, err)
	}
	if c.Spec.VolumeName == "" {
		return nil
	}
	pv, err := e.Admin.CoreV1().PersistentVolumes().Get(e.ctx, c.Spec.VolumeName, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("PV of %s: %v", pvc, err)
	}
	return pv
}

// targetPath is where kubelet has the plugin publish a pod's volume.
func (e *env) targetPath(pod *corev1.Pod, pv string) string {
	return filepath.Join(e.kubelet.root, "pods", string(pod.UID), "volumes", "kubernetes.io~csi", pv, "mount")
}

// mounted reports whether path is a mount point (in this mount namespace).
func mounted(t *testing.T, path string) bool {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == path {
			return true
		}
	}
	return false
}

// scenario runs one scenario as a subtest with its own timeout. At its
// end it dumps the objects into the artifacts directory, and on failure
// logs the pods, PVCs and their events.
func (e *env) scenario(t *testing.T, name string, timeout time.Duration, f func(t *testing.T)) {
	t.Run(name, func(t *testing.T) {
		start := time.Now()
		timer := time.AfterFunc(timeout, func() {
			t.Errorf("scenario %q still running after its timeout %v", name, timeout)
		})
		defer timer.Stop()
		defer func() {
			e.dump(t, name)
			if t.Failed() {
				e.logState(t)
			}
			t.Logf("scenario %q took %v", name, time.Since(start).Round(100*time.Millisecond))
		}()
		f(t)
	})
}

// logState logs the test's pods and PVCs with their events.
func (e *env) logState(t *testing.T) {
	pods, _ := e.Admin.CoreV1().Pods(testNS).List(e.ctx, metav1.ListOptions{})
	if pods != nil {
		for i := range pods.Items {
			p := &pods.Items[i]
			t.Logf("pod %s: %s %s; events: %s\n%s", p.Name, p.Status.Phase, podStatus(p), e.events(p.UID), e.containerLog(p))
		}
	}
	pvcs, _ := e.Admin.CoreV1().PersistentVolumeClaims(testNS).List(e.ctx, metav1.ListOptions{})
	if pvcs != nil {
		for _, c := range pvcs.Items {
			t.Logf("PVC %s: %s, volume %q; events: %s", c.Name, c.Status.Phase, c.Spec.VolumeName, e.events(c.UID))
		}
	}
}

var unsafeChars = regexp.MustCompile(`[^a-zA-Z0-9._-]+`)

// dump writes the Pods, PVCs, PVs, CSINodes and CSIStorageCapacities as
// YAML into $LOCALDISK_E2E_ARTIFACTS/<scenario>/.
func (e *env) dump(t *testing.T, scenario string) {
	base := os.Getenv(cluster.ArtifactsEnv)
	if base == "" {
		return
	}
	dir := filepath.Join(base, unsafeChars.ReplaceAllString(scenario, "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Errorf("artifacts: %v", err)
		return
	}
	write := func(name string, obj any, err error) {
		if err != nil {
			t.Logf("artifacts: listing %s: %v", name, err)
			return
		}
		data, err := yaml.Marshal(obj)
		if err != nil {
			t.Errorf("artifacts: %s: %v", name, err)
			return
		}
		if err := os.WriteFile(filepath.Join(dir, name+".yaml"), data, 0o644); err != nil {
			t.Errorf("artifacts: %v", err)
		}
	}
	opts := metav1.ListOptions{}
	pods, err := e.Admin.CoreV1().Pods("").List(e.ctx, opts)
	write("pods", pods, err)
	pvcs, err := e.Admin.CoreV1().PersistentVolumeClaims("").List(e.ctx, opts)
	write("pvcs", pvcs, err)
	pvs, err := e.Admin.CoreV1().PersistentVolumes().List(e.ctx, opts)
	write("pvs", pvs, err)
	csiNodes, err := e.Admin.StorageV1().CSINodes().List(e.ctx, opts)
	write("csinodes", csiNodes, err)
	caps, err := e.Admin.StorageV1().CSIStorageCapacities(deploy.Namespace).List(e.ctx, opts)
	write("csistoragecapacities", caps, err)
	events, err := e.Admin.CoreV1().Events(testNS).List(e.ctx, opts)
	write("events", events, err)
}
