package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	registerapi "k8s.io/kubelet/pkg/apis/pluginregistration/v1"

	deploy "github.com/localdisk-csi/localdisk/deploy/kubernetes"
	"github.com/localdisk-csi/localdisk/test/e2e/cluster"
	"github.com/localdisk-csi/localdisk/test/testutil"
)

// cgroupFS is where the cgroup v1 hierarchies (and the v2 one of a hybrid
// setup, "unified") are mounted.
const cgroupFS = "/sys/fs/cgroup"

// kubelet is the node agent, started by the test with a root directory,
// a cgroup root and ports of its own.
type kubelet struct {
	bin, dir, logDir string
	root             string // --root-dir: plugins/, plugins_registry/, pods/
	cgroupRoot       string // cgroupRoot, made in every hierarchy
	config           string
	kubeconfig       string
	port             int
	proc             *cluster.Process
}

// kubeletConfig is the KubeletConfiguration. This host runs cgroup v1,
// which kubelet ≥ 1.35 refuses unless failCgroupV1 is false; containerd
// 1.x reports no cgroup driver, so kubelet uses cgroupDriver.
const kubeletConfig = `apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
failCgroupV1: false
cgroupDriver: cgroupfs
cgroupRoot: %[1]s
containerRuntimeEndpoint: unix://%[2]s
address: 127.0.0.1
port: %[3]d
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: %[4]d
podLogsDir: %[5]s
authentication:
  anonymous:
    enabled: true
  webhook:
    enabled: false
authorization:
  mode: AlwaysAllow
failSwapOn: false
registerNode: true
nodeStatusUpdateFrequency: 5s
syncFrequency: 10s
volumeStatsAggPeriod: 5s
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: "1Mi"
  nodefs.available: "1%%"
  nodefs.inodesFree: "1%%"
  imagefs.available: "1%%"
  imagefs.inodesFree: "1%%"
serializeImagePulls: false
resolvConf: ""
`

// startKubelet prepares the cgroup root and starts kubelet against the
// API server and containerd. Its cleanup, registered before kubelet runs,
// kills what is left in the cgroup root, unmounts what is left under the
// root directory and removes the cgroups.
func startKubelet(t *testing.T, dir, bin string, c *cluster.Cluster, cri *containerd) *kubelet {
	t.Helper()
	k := &kubelet{bin: bin, dir: dir, root: filepath.Join(dir, "kubelet"), logDir: filepath.Join(dir, "pod-logs"),
		cgroupRoot: "/localdisk-e2e-" + filepath.Base(dir)}
	for _, d := range []string{k.root, k.logDir} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { k.cleanup(t) })
	k.makeCgroups(t)
	// The test restarts kubelet (scenario 7): keep its own link to the
	// binary, since another worktree's hack/build-e2e-tools.sh may drop the
	// cached build (other pins are pruned) while the test runs.
	k.bin = keepBinary(t, bin, filepath.Join(dir, "kubelet.bin"))
	k.port = cluster.FreePort(t)
	k.config = filepath.Join(dir, "kubelet.yaml")
	cluster.WriteFile(t, k.config, fmt.Appendf(nil, kubeletConfig, k.cgroupRoot, cri.socket, k.port,
		cluster.FreePort(t), k.logDir))
	k.kubeconfig = c.PKI.WriteKubeconfig(t, "kubelet", c.URL, c.PKI.AdminToken)
	k.start(t)
	return k
}

func (k *kubelet) start(t *testing.T) {
	t.Helper()
	k.proc = cluster.StartProcess(t, k.dir, "kubelet", nil, k.bin,
		"--config="+k.config, "--kubeconfig="+k.kubeconfig, "--root-dir="+k.root,
		"--hostname-override="+nodeName, "--v=2")
}

// keepBinary hard-links (or else copies) bin to path and returns path.
func keepBinary(t *testing.T, bin, path string) string {
	t.Helper()
	if err := os.Link(bin, path); err == nil {
		return path
	}
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

// restart stops kubelet (SIGTERM) and starts it again, as a process of
// top, the whole test, so that it outlives the scenario that restarts it.
func (k *kubelet) restart(t, top *testing.T) {
	t.Helper()
	k.proc.Stop(t)
	k.start(top)
}

// hostSysctls are the kernel settings that kubelet (its kernel tunables:
// vm.overcommit_memory, kernel.panic, ...) and the bridge CNI plugin
// (ip_forward, for a gateway bridge) change on the host.
var hostSysctls = []string{
	"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
	"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes", "net/ipv4/ip_forward",
}

// keepSysctls records hostSysctls and restores them when the test ends
// (register it before kubelet and containerd start, so it runs after they
// have stopped).
func keepSysctls(t *testing.T) {
	t.Helper()
	saved := map[string][]byte{}
	for _, k := range hostSysctls {
		if v, err := os.ReadFile(filepath.Join("/proc/sys", k)); err == nil {
			saved[k] = v
		}
	}
	t.Cleanup(func() {
		for k, v := range saved {
			p := filepath.Join("/proc/sys", k)
			if now, err := os.ReadFile(p); err == nil && string(now) == string(v) {
				continue
			}
			if err := os.WriteFile(p, v, 0o644); err != nil {
				t.Errorf("restoring %s to %s: %v", p, strings.TrimSpace(string(v)), err)
			}
		}
	})
}

// hierarchies are the cgroup hierarchies under cgroupFS.
func hierarchies(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir(cgroupFS)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() {
			out = append(out, filepath.Join(cgroupFS, e.Name()))
		}
	}
	return out
}

// makeCgroups makes the cgroup root in every hierarchy (kubelet wants it
// to exist), with the cpuset of its parent.
func (k *kubelet) makeCgroups(t *testing.T) {
	t.Helper()
	for _, h := range hierarchies(t) {
		d := filepath.Join(h, k.cgroupRoot)
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
			t.Fatalf("making cgroup %s: %v", d, err)
		}
		for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
			if v, err := os.ReadFile(filepath.Join(h, f)); err == nil {
				if err := os.WriteFile(filepath.Join(d, f), v, 0o644); err != nil {
					t.Fatalf("%s: %v", filepath.Join(d, f), err)
				}
			}
		}
	}
}

// cgroupDirs lists the cgroup directories below the cgroup root in every
// hierarchy, deepest first.
func (k *kubelet) cgroupDirs(t *testing.T) []string {
	t.Helper()
	var dirs []string
	for _, h := range hierarchies(t) {
		_ = filepath.WalkDir(filepath.Join(h, k.cgroupRoot), func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
	}
	slices.SortFunc(dirs, func(a, b string) int { return strings.Count(b, "/") - strings.Count(a, "/") })
	return dirs
}

// cleanup runs after kubelet has stopped and before containerd does: it
// kills any process left in the cgroup root (a pod kubelet did not get to
// stop), unmounts what is left under the root dir (kubelet unmounts a
// pod's volumes when it deletes the pod), and removes the cgroups.
func (k *kubelet) cleanup(t *testing.T) {
	if k.proc != nil {
		k.proc.Stop(t)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		var left []int
		for _, d := range k.cgroupDirs(t) {
			data, _ := os.ReadFile(filepath.Join(d, "cgroup.procs"))
			for _, f := range strings.Fields(string(data)) {
				if pid, err := strconv.Atoi(f); err == nil {
					left = append(left, pid)
					_ = syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("processes %v are still in cgroup %s", left, k.cgroupRoot)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	// kubelet bind-mounts its root directory on itself (to make it shared):
	// that one is expected.
	if mounted(t, k.root) {
		if err := syscall.Unmount(k.root, syscall.MNT_DETACH); err != nil {
			t.Errorf("unmounting kubelet's root dir %s: %v", k.root, err)
		}
	}
	if detached, err := testutil.DetachMounts(k.root); err != nil {
		t.Errorf("unmounting under %s: %v", k.root, err)
	} else if len(detached) > 0 {
		t.Errorf("%d mounts were left under kubelet's root dir: %v", len(detached), detached)
	}
	for _, d := range k.cgroupDirs(t) {
		var err error
		for range 50 { // a cgroup whose last task just died may be busy a moment
			if err = syscall.Rmdir(d); err == nil || errors.Is(err, syscall.ENOENT) {
				err = nil
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil {
			t.Errorf("removing cgroup %s: %v", d, err)
		}
	}
}

// registrar plays node-driver-registrar: it serves kubelet's plugin
// registration API on plugins_registry/<driver>-reg.sock, pointing kubelet
// at the plugin's socket.
type registrar struct {
	registerapi.UnimplementedRegistrationServer
	endpoint string
	status   chan *registerapi.RegistrationStatus
}

func (r *registrar) GetInfo(context.Context, *registerapi.InfoRequest) (*registerapi.PluginInfo, error) {
	return &registerapi.PluginInfo{
		Type: registerapi.CSIPlugin, Name: deploy.DriverName, Endpoint: r.endpoint,
		SupportedVersions: []string{"1.0.0"},
	}, nil
}

func (r *registrar) NotifyRegistrationStatus(_ context.Context, s *registerapi.RegistrationStatus) (*registerapi.RegistrationStatusResponse, error) {
	select {
	case r.status <- s:
	default:
	}
	return &registerapi.RegistrationStatusResponse{}, nil
}

// register serves the registration socket until the test ends and waits
// for kubelet to report the registration's outcome.
func (k *kubelet) register(t *testing.T, endpoint string) {
	t.Helper()
	dir := filepath.Join(k.root, "plugins_registry")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, deploy.DriverName+"-reg.sock")
	_ = os.Remove(sock)
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatalf("registration socket: %v", err)
	}
	r := &registrar{endpoint: endpoint, status: make(chan *registerapi.RegistrationStatus, 1)}
	srv := grpc.NewServer()
	registerapi.RegisterRegistrationServer(srv, r)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Stop()
		_ = os.Remove(sock)
	})
	select {
	case s := <-r.status:
		if !s.PluginRegistered {
			t.Fatalf("kubelet refused the plugin: %s", s.Error)
		}
	case <-time.After(cluster.ReadyTimeout):
		t.Fatalf("kubelet did not register the plugin within %v\n%s", cluster.ReadyTimeout, k.proc.Tail())
	}
}
