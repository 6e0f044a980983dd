package node

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	deploy "github.com/localdisk-csi/localdisk/deploy/kubernetes"
	"github.com/localdisk-csi/localdisk/driver/layout"
)

// TestNode runs pods on localdisk volumes through a real kubelet. The
// scenarios share the node and run in order; 3 and 8 use the volumes of 2.
func TestNode(t *testing.T) {
	start := time.Now()
	e := setup(t)
	t.Logf("control plane, containerd, kubelet, localdisk and csi-provisioner started in %v",
		time.Since(start).Round(100*time.Millisecond))
	// The shipped StorageClasses, by the kind of disk they pick.
	classes := []struct{ kind, class string }{
		{"root", "localdisk-root"}, {"path", "localdisk-path"}, {"mount", "localdisk-mount"},
	}
	for _, c := range classes {
		e.deployment.Class(t, c.class)
	}
	firstPods := map[string]*corev1.Pod{} // scenario 2's pods by kind

	e.scenario(t, "1 the node registers with the plugin and its topology", 3*time.Minute, func(t *testing.T) {
		e.waitFor(t, "CSINode with "+deploy.DriverName, time.Minute, func() (bool, string) {
			n, err := e.Admin.StorageV1().CSINodes().Get(e.ctx, nodeName, metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			for _, d := range n.Spec.Drivers {
				if d.Name == deploy.DriverName {
					ok := d.NodeID == nodeName && slices.Equal(d.TopologyKeys, []string{layout.TopologyKey})
					return ok, fmt.Sprintf("driver %+v", d)
				}
			}
			return false, fmt.Sprintf("drivers %+v", n.Spec.Drivers)
		})
		node, err := e.Admin.CoreV1().Nodes().Get(e.ctx, nodeName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := node.Labels[layout.TopologyKey]; got != nodeName {
			t.Errorf("node label %s=%q, want %q (labels %v)", layout.TopologyKey, got, nodeName, node.Labels)
		}
	})

	e.scenario(t, "2 a pod per StorageClass is scheduled, bound and Running and writes", 6*time.Minute, func(t *testing.T) {
		for _, c := range classes {
			e.createPVC(t, "data-"+c.kind, c.class, 32*mi, false)
			e.createPod(t, "writer-"+c.kind, "data-"+c.kind,
				"echo "+c.kind+"-data > "+mountPath+"/file && sync && exec sleep 100000", podOptions{})
		}
		for _, c := range classes {
			pod := e.waitPod(t, "writer-"+c.kind, corev1.PodRunning, 4*time.Minute)
			if pod.Spec.NodeName != nodeName {
				t.Errorf("pod %s on node %q", pod.Name, pod.Spec.NodeName)
			}
			pvc, err := e.Admin.CoreV1().PersistentVolumeClaims(testNS).Get(e.ctx, "data-"+c.kind, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if pvc.Status.Phase != corev1.ClaimBound || pvc.Annotations["volume.kubernetes.io/selected-node"] != nodeName {
				t.Errorf("PVC %s: %s, annotations %v", pvc.Name, pvc.Status.Phase, pvc.Annotations)
			}
			target := filepath.Join(e.targetPath(pod, pvc.Spec.VolumeName), "file")
			e.waitFor(t, "the file written by "+pod.Name, time.Minute, func() (bool, string) {
				data, err := os.ReadFile(target)
				return err == nil && string(data) == c.kind+"-data\n", fmt.Sprintf("%q, %v", data, err)
			})
			firstPods[c.kind] = pod
		}
	})

	e.scenario(t, "3 a new pod on the same PVC reads the data back", 6*time.Minute, func(t *testing.T) {
		for _, c := range classes {
			old := firstPods[c.kind]
			if old == nil {
				t.Fatalf("scenario 2 made no pod for %s", c.kind)
			}
			pv := e.pvOf(t, "data-"+c.kind)
			e.deletePod(t, old.Name)
			target := e.targetPath(old, pv.Name)
			if mounted(t, target) {
				t.Errorf("%s is still mounted after its pod was deleted", target)
			}
			if _, err := os.Stat(target); !os.IsNotExist(err) {
				t.Errorf("kubelet's unpublish left %s (stat: %v)", target, err)
			}
			e.createPod(t, "reader-"+c.kind, "data-"+c.kind,
				`test "$(cat `+mountPath+`/file)" = `+c.kind+`-data`, podOptions{})
		}
		for _, c := range classes {
			e.waitPod(t, "reader-"+c.kind, corev1.PodSucceeded, 3*time.Minute)
		}
	})

	e.scenario(t, "4 fsGroup reaches the plugin as VOLUME_MOUNT_GROUP and a non-root pod writes", 4*time.Minute, func(t *testing.T) {
		e.createPVC(t, "fsgroup", "localdisk-path", 16*mi, false)
		uid, gid := int64(1000), int64(2000)
		e.createPod(t, "fsgroup", "fsgroup", `set -e; id; id -G | grep -qw 2000; echo ok > `+mountPath+`/file;
ls -ln `+mountPath+`; test "$(stat -c %g `+mountPath+`/file)" = 2000`, podOptions{user: &uid, fsGroup: &gid})
		e.waitPod(t, "fsgroup", corev1.PodSucceeded, 3*time.Minute)
		pv := e.pvOf(t, "fsgroup")
		if !e.pluginLogHas(pv.Spec.CSI.VolumeHandle, "volume_mount_group=2000") {
			t.Errorf("the plugin's log shows no stage or publish of %s with volume_mount_group=2000", pv.Spec.CSI.VolumeHandle)
		}
		e.deletePod(t, "fsgroup")
		e.deletePVC(t, "fsgroup")
	})

	e.scenario(t, "5 a read-only PVC refuses writes with EROFS", 4*time.Minute, func(t *testing.T) {
		e.createPVC(t, "readonly", "localdisk-root", 16*mi, false)
		e.createPod(t, "readonly", "readonly", `if touch `+mountPath+`/file 2>/tmp/err; then echo "the write succeeded"; exit 1; fi
cat /tmp/err; grep -q "Read-only file system" /tmp/err`, podOptions{readOnly: true})
		e.waitPod(t, "readonly", corev1.PodSucceeded, 3*time.Minute)
		e.deletePod(t, "readonly")
		e.deletePVC(t, "readonly")
	})

	e.scenario(t, "6 a PVC larger than the free capacity stays Pending: the scheduler read CSIStorageCapacity", 3*time.Minute, func(t *testing.T) {
		e.createPVC(t, "too-large", "localdisk-root", 2*rootCapacity, false)
		pod := e.createPod(t, "too-large", "too-large", "true", podOptions{})
		var msg string
		e.waitFor(t, "the scheduler's FailedScheduling event naming storage capacity", 2*time.Minute, func() (bool, string) {
			ev := e.events(pod.UID)
			msg = ev
			return strings.Contains(ev, "FailedScheduling") && strings.Contains(ev, "did not have enough free storage"), ev
		})
		t.Logf("scheduler: %s", strings.TrimSpace(msg))
		pvc, err := e.Admin.CoreV1().PersistentVolumeClaims(testNS).Get(e.ctx, "too-large", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if pvc.Status.Phase != corev1.ClaimPending || pvc.Spec.VolumeName != "" {
			t.Errorf("PVC too-large is %s with volume %q, want Pending with none", pvc.Status.Phase, pvc.Spec.VolumeName)
		}
		e.deletePod(t, "too-large")
		e.deletePVC(t, "too-large")
	})

	e.scenario(t, "7 restarting kubelet, then localdisk, keeps a running pod's mount and data", 6*time.Minute, func(t *testing.T) {
		e.checkRestarts(t)
	})

	e.scenario(t, "8 deleting a PVC deletes its volume: directory gone, MOUNT disk wiped", 5*time.Minute, func(t *testing.T) {
		for _, c := range classes {
			e.deletePod(t, "reader-"+c.kind)
		}
		// kubelet unstages a volume once its last pod is gone; the plugin
		// refuses to delete a volume that is still staged.
		e.checkUnstaged(t)
		for _, c := range classes {
			pv := e.deletePVC(t, "data-"+c.kind)
			id := pv.Spec.CSI.VolumeHandle
			switch c.kind {
			case "root", "path":
				pool := map[string]string{"root": e.rootDir, "path": e.pathDisk}[c.kind]
				dir := filepath.Join(pool, "localdisk", "volumes", id)
				if _, err := os.Stat(dir); !os.IsNotExist(err) {
					t.Errorf("volume %s: %s still there (stat: %v)", id, dir, err)
				}
			case "mount": // wiped: the mounted disk is empty, the device disk holds no filesystem
				ents, err := os.ReadDir(e.mountDisk)
				if err != nil {
					t.Errorf("MOUNT disk %s: %v", e.mountDisk, err)
				}
				for _, ent := range ents {
					if ent.Name() != "lost+found" {
						t.Errorf("MOUNT disk %s still holds %s after its volume was deleted", e.mountDisk, ent.Name())
					}
				}
				if out, _ := exec.Command("blkid", "-p", "-o", "value", "-s", "TYPE", e.device).Output(); len(bytes.TrimSpace(out)) > 0 {
					t.Errorf("MOUNT disk %s still holds a %s filesystem after its volume was deleted", e.device, bytes.TrimSpace(out))
				}
			}
			if e.pluginHasVolume(t, id) {
				t.Errorf("the plugin still lists volume %s", id)
			}
		}
	})

	e.scenario(t, "9 a Block PVC on a device disk gives the container the block device", 4*time.Minute, func(t *testing.T) {
		e.createPVC(t, "block", "localdisk-mount", 100*mi, true)
		e.createPod(t, "block", "block", `set -e; ls -l `+devicePath+`; test -b `+devicePath+`
dd if=/dev/urandom of=`+devicePath+` bs=4096 count=16; dd if=`+devicePath+` of=/dev/null bs=4096 count=16`,
			podOptions{block: true})
		e.waitPod(t, "block", corev1.PodSucceeded, 3*time.Minute)
		e.deletePod(t, "block")
		e.deletePVC(t, "block")
	})

	e.scenario(t, "10 kubelet's volume stats show the volume's own capacity on an enforced pool", 4*time.Minute, func(t *testing.T) {
		e.checkVolumeStats(t)
	})

	e.scenario(t, "11 pods read a PVC restored from a VolumeSnapshot and a PVC cloned from a PVC", 8*time.Minute, func(t *testing.T) {
		e.checkSnapshots(t)
	})
}
