package node

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/localdisk-csi/localdisk/test/e2e/cluster"
	"github.com/localdisk-csi/localdisk/test/testutil"
)

const (
	// cniBinDir is where Debian's containernetworking-plugins installs
	// bridge, host-local and loopback.
	cniBinDir = "/usr/lib/cni"
	// bridgeName and podSubnet are the pods' network, on this node only.
	bridgeName = "ldnode-br0"
	podSubnet  = "10.213.0.0/24"
)

// containerd is the node's CRI runtime: Debian's containerd with Debian's
// runc, its root, state, socket and CNI configuration in a directory of
// the test.
type containerd struct {
	dir    string // root/, state/, cni/, containerd.sock
	socket string
	ctr    string
	proc   *cluster.Process
}

// containerdConfig is containerd 1.6's configuration (version 2).
const containerdConfig = `version = 2
root = %[1]q
state = %[2]q
disabled_plugins = ["io.containerd.internal.v1.tracing", "io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = %[3]q

[ttrpc]
  address = %[4]q

[plugins."io.containerd.internal.v1.opt"]
  path = %[5]q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[6]q
  netns_mounts_under_state_dir = true
  enable_selinux = false
  disable_apparmor = true
  # The test runs without CAP_SYS_RESOURCE here, so no process may lower its
  # oom_score_adj (the sandbox's -998 fails in runc with EACCES): keep each
  # at least containerd's own.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = %[7]q
        Root = %[10]q
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %[8]q
    conf_dir = %[9]q
    max_conf_num = 1
`

// cniConfig is the pods' network: a bridge of this test's own with
// host-local addresses (containerd adds the loopback plugin itself).
const cniConfig = `{
  "cniVersion": "1.0.0",
  "name": "localdisk-e2e",
  "plugins": [{
    "type": "bridge",
    "bridge": %q,
    "isGateway": true,
    "ipMasq": false,
    "ipam": {"type": "host-local", "dataDir": %q, "ranges": [[{"subnet": %q}]]}
  }]
}
`

// startContainerd writes the configuration and starts containerd, waits
// for its socket, and imports the images. Its cleanup (registered first,
// so it runs after kubelet's) kills what is left of the pods, the shims and
// containerd, unmounts its mounts and removes the bridge.
func startContainerd(t *testing.T, dir string, images map[string]string) *containerd {
	t.Helper()
	bin, err := cluster.LookTool("containerd")
	if err != nil {
		cluster.SkipOrFail(t, "containerd not found (run hack/install-test-deps.sh as root): %v", err)
	}
	runc, err := cluster.LookTool("runc")
	if err != nil {
		cluster.SkipOrFail(t, "runc not found (run hack/install-test-deps.sh as root): %v", err)
	}
	ctr, err := cluster.LookTool("ctr")
	if err != nil {
		cluster.SkipOrFail(t, "ctr not found: %v", err)
	}
	for _, p := range []string{"bridge", "host-local", "loopback"} {
		if _, err := os.Stat(filepath.Join(cniBinDir, p)); err != nil {
			cluster.SkipOrFail(t, "CNI plugin %s not found (containernetworking-plugins): %v", p, err)
		}
	}
	c := &containerd{dir: filepath.Join(dir, "containerd"), ctr: ctr}
	c.socket = filepath.Join(c.dir, "containerd.sock")
	cniConf := filepath.Join(c.dir, "cni")
	for _, d := range []string{c.dir, cniConf, filepath.Join(c.dir, "opt"), filepath.Join(c.dir, "ipam")} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { c.cleanup(t) })
	removeBridge(t) // a leftover of a killed run
	cluster.WriteFile(t, filepath.Join(cniConf, "10-localdisk-e2e.conflist"),
		fmt.Appendf(nil, cniConfig, bridgeName, filepath.Join(c.dir, "ipam"), podSubnet))
	config := filepath.Join(c.dir, "config.toml")
	cluster.WriteFile(t, config, fmt.Appendf(nil, containerdConfig,
		filepath.Join(c.dir, "root"), filepath.Join(c.dir, "state"), c.socket, c.socket+".ttrpc",
		filepath.Join(c.dir, "opt"), pauseImage, runc, cniBinDir, cniConf, filepath.Join(c.dir, "runc")))
	c.proc = cluster.StartProcess(t, dir, "containerd", nil, bin, "--config", config, "--log-level", "debug")
	deadline := time.Now().Add(cluster.ReadyTimeout)
	for {
		c.proc.CheckRunning(t)
		if _, err := c.run("version"); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("containerd not ready within %v: %v\n%s", cluster.ReadyTimeout, err, c.proc.Tail())
		}
		time.Sleep(200 * time.Millisecond)
	}
	for name, archive := range images {
		if out, err := c.run("-n", "k8s.io", "images", "import", archive); err != nil {
			t.Fatalf("importing %s: %v\n%s", name, err, out)
		}
	}
	return c
}

// run runs ctr against this containerd.
func (c *containerd) run(args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.ctr, append([]string{"--address", c.socket}, args...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// shims returns the PIDs of the containerd-shim processes of this
// containerd (they run in process groups of their own).
func (c *containerd) shims() []int {
	var pids []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(cmdline), "\x00")
		if strings.Contains(args[0], "containerd-shim") && strings.Contains(string(cmdline), c.socket) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// cleanup kills the shims (their containers are gone with kubelet's pods,
// or killed with the pods' cgroups before this runs) and containerd,
// then unmounts what is left under its directory and removes the bridge.
func (c *containerd) cleanup(t *testing.T) {
	for _, pid := range c.shims() {
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
			t.Errorf("killing containerd-shim %d: %v", pid, err)
		}
	}
	if c.proc != nil {
		c.proc.Stop(t)
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(c.shims()) > 0 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if pids := c.shims(); len(pids) > 0 {
		t.Errorf("containerd-shim processes %v still running", pids)
	}
	if detached, err := testutil.DetachMounts(c.dir); err != nil {
		t.Errorf("unmounting under %s: %v", c.dir, err)
	} else if len(detached) > 0 {
		t.Logf("unmounted %d mounts of containerd under %s", len(detached), c.dir)
	}
	removeBridge(t)
}

// removeBridge deletes the pods' bridge; the pods' veths went with their
// network namespaces.
func removeBridge(t *testing.T) {
	if _, err := os.Stat("/sys/class/net/" + bridgeName); err != nil {
		return
	}
	if out, err := exec.Command("ip", "link", "delete", bridgeName).CombinedOutput(); err != nil {
		t.Errorf("deleting the bridge %s: %v: %s", bridgeName, err, out)
	}
}
