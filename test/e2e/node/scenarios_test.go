package node

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/localdisk-csi/localdisk/test/testutil"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// pluginLogHas reports whether a line of the plugin's log names volume id
// and holds want.
func (e *env) pluginLogHas(id, want string) bool {
	data, err := os.ReadFile(e.plugin.LogPath)
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.Contains(line, id) && strings.Contains(line, want) {
			return true
		}
	}
	return false
}

// pluginHasVolume reports whether the plugin lists volume id.
func (e *env) pluginHasVolume(t *testing.T, id string) bool {
	t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	resp, err := e.plugin.Controller().ListVolumes(ctx, &csi.ListVolumesRequest{})
	if err != nil {
		t.Fatalf("ListVolumes: %v", err)
	}
	for _, v := range resp.GetEntries() {
		if v.GetVolume().GetVolumeId() == id {
			return true
		}
	}
	return false
}

// startWriter creates a PVC and a pod that writes data to it and then
// runs on; it returns the running pod and the published target path.
func (e *env) startWriter(t *testing.T, name, class string, size int64, write string) (*corev1.Pod, string) {
	t.Helper()
	e.createPVC(t, name, class, size, false)
	e.createPod(t, name, name, write+" && sync && exec sleep 100000", podOptions{})
	pod := e.waitPod(t, name, corev1.PodRunning, 3*time.Minute)
	return pod, e.targetPath(pod, e.pvOf(t, name).Name)
}

// checkRestarts is scenario 7.
func (e *env) checkRestarts(t *testing.T) {
	pod, target := e.startWriter(t, "restart", "localdisk-path", 16*mi, "echo before > "+mountPath+"/file")
	checkData := func(when string) {
		t.Helper()
		e.waitFor(t, "the pod's data "+when, time.Minute, func() (bool, string) {
			data, err := os.ReadFile(filepath.Join(target, "file"))
			return err == nil && string(data) == "before\n", fmt.Sprintf("%q, %v", data, err)
		})
		if !mounted(t, target) {
			t.Errorf("%s: %s is not mounted", when, target)
		}
		p, err := e.Admin.CoreV1().Pods(testNS).Get(e.ctx, pod.Name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p.Status.Phase != corev1.PodRunning || len(p.Status.ContainerStatuses) != 1 ||
			p.Status.ContainerStatuses[0].ContainerID != pod.Status.ContainerStatuses[0].ContainerID ||
			p.Status.ContainerStatuses[0].RestartCount != 0 {
			t.Errorf("%s: pod %s is %s (%s), its container %+v, want the same container running", when,
				p.Name, p.Status.Phase, podStatus(p), p.Status.ContainerStatuses)
		}
	}
	checkData("at start")

	e.kubelet.restart(t, e.t)
	e.waitNodeReady(t, 2*time.Minute)
	// Let kubelet resync its pods and volumes before looking.
	time.Sleep(15 * time.Second)
	checkData("after kubelet restarted")

	e.plugin.Restart()
	// csi-provisioner exits when it loses its plugin ("Lost connection to
	// CSI driver, exiting"), sooner or later; in the DaemonSet kubelet then
	// restarts the container. Here the test restarts it at once, whether it
	// has noticed yet or not, so that a late exit is never taken for a
	// failure.
	e.provisioner.Stop(e.t)
	// The test's t, not the scenario's: it must outlive the scenario.
	e.provisioner = e.StartProvisioner(e.t, e.ctx, e.deployment, e.dir, e.dir, e.plugin.Options().Endpoint)
	time.Sleep(5 * time.Second)
	checkData("after localdisk restarted")

	e.deletePod(t, pod.Name)
	if mounted(t, target) {
		t.Errorf("%s is still mounted after its pod was deleted", target)
	}
	if _, err := os.Stat(target); !os.IsNotExist(err) {
		t.Errorf("kubelet's unpublish left %s (stat: %v)", target, err)
	}
	e.deletePVC(t, "restart")
}

// checkVolumeStats is scenario 10: kubelet's summary API and its
// kubelet_volume_stats_capacity_bytes metric show the size of a volume on
// the PATH pool (btrfs with qgroups: enforced), not the filesystem's.
func (e *env) checkVolumeStats(t *testing.T) {
	const size = 64 * mi
	e.startWriter(t, "stats", "localdisk-path", size,
		"dd if=/dev/zero of="+mountPath+"/file bs=1048576 count=4")
	var st unix.Statfs_t
	if err := unix.Statfs(e.pathDisk, &st); err != nil {
		t.Fatal(err)
	}
	fsSize := int64(st.Blocks) * st.Bsize
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, // kubelet's self-signed certificate
	}}
	base := "https://127.0.0.1:" + strconv.Itoa(e.kubelet.port)
	get := func(path string) ([]byte, error) {
		resp, err := client.Get(base + path)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		data, err := io.ReadAll(resp.Body)
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("%s: %s", resp.Status, data)
		}
		return data, err
	}
	e.waitFor(t, "the summary API's capacity of the volume", 2*time.Minute, func() (bool, string) {
		data, err := get("/stats/summary")
		if err != nil {
			return false, err.Error()
		}
		capacity, used, found := summaryVolume(data, "stats", "data")
		if !found {
			return false, "the summary lists no volume data of pod stats"
		}
		t.Logf("summary API: capacityBytes %d, usedBytes %d (the btrfs filesystem: %d bytes)", capacity, used, fsSize)
		return capacity == size, fmt.Sprintf("capacityBytes %d, want %d (the filesystem's size is %d)", capacity, size, fsSize)
	})
	e.waitFor(t, "kubelet_volume_stats_capacity_bytes of the PVC", 2*time.Minute, func() (bool, string) {
		data, err := get("/metrics")
		if err != nil {
			return false, err.Error()
		}
		v, ok := metricValue(data, "kubelet_volume_stats_capacity_bytes", `persistentvolumeclaim="stats"`)
		if !ok {
			return false, "no kubelet_volume_stats_capacity_bytes for PVC stats"
		}
		t.Logf("kubelet_volume_stats_capacity_bytes{persistentvolumeclaim=\"stats\"} %v", v)
		return int64(v) == size, fmt.Sprintf("%v, want %d (the filesystem's size is %d)", v, size, fsSize)
	})
	e.deletePod(t, "stats")
	e.deletePVC(t, "stats")
}

// summaryVolume finds a pod's volume in kubelet's /stats/summary.
func summaryVolume(data []byte, pod, volume string) (capacity, used int64, found bool) {
	var s struct {
		Pods []struct {
			PodRef struct{ Name, Namespace string } `json:"podRef"`
			Volume []struct {
				Name          string `json:"name"`
				CapacityBytes *int64 `json:"capacityBytes"`
				UsedBytes     *int64 `json:"usedBytes"`
			} `json:"volume"`
		} `json:"pods"`
	}
	if json.Unmarshal(data, &s) != nil {
		return 0, 0, false
	}
	for _, p := range s.Pods {
		if p.PodRef.Name != pod || p.PodRef.Namespace != testNS {
			continue
		}
		for _, v := range p.Volume {
			if v.Name == volume && v.CapacityBytes != nil {
				if v.UsedBytes != nil {
					used = *v.UsedBytes
				}
				return *v.CapacityBytes, used, true
			}
		}
	}
	return 0, 0, false
}

// metricValue finds a sample of metric whose labels contain label in a
// Prometheus text exposition.
func metricValue(data []byte, metric, label string) (float64, bool) {
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, metric+"{") || !strings.Contains(line, label) {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[1], 64)
		if err == nil {
			return v, true
		}
	}
	return 0, false
}

// checkUnstaged waits until kubelet has unstaged every volume (nothing is
// mounted under its plugins directory), failing with kubelet's reason when
// it does not: kubelet refuses to unmount a staging path whose filesystem
// root is also mounted outside its directory ("still mounted by other
// references"), as a MOUNT disk given by path was before its staging mark.
func (e *env) checkUnstaged(t *testing.T) {
	t.Helper()
	plugins := filepath.Join(e.kubelet.root, "plugins")
	deadline := time.Now().Add(time.Minute)
	for len(testutil.Mounts(t, plugins)) > 0 && time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
	}
	left := testutil.Mounts(t, plugins)
	if len(left) == 0 {
		return
	}
	var reasons []string
	data, _ := os.ReadFile(e.kubelet.proc.Log)
	for _, line := range strings.Split(string(data), "\n") {
		if i := strings.Index(line, "still mounted by other references"); i >= 0 {
			if j := strings.Index(line, "Error: "); j >= 0 {
				reasons = append(reasons, line[j:])
			}
		}
	}
	if len(reasons) > 0 {
		reasons = reasons[len(reasons)-1:]
	}
	t.Errorf("kubelet did not unstage %v within a minute of the last pod's deletion; kubelet: %v", left, reasons)
}
