package mesos

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/test/testutil"
)

// endpointTimeout is how long Mesos waits for the endpoint socket.
const endpointTimeout = 60 * time.Second

// bare is a plugin process launched with exactly the arguments and
// environment given, as Mesos launches a plugin container.
type bare struct {
	conn    *grpc.ClientConn
	log     string
	seccomp string // testutil.Seccomp() at launch
}

// launchBare starts bin with args and env (nothing else), waits for the
// socket at endpoint to appear as Mesos does, and connects to it. The
// process group is killed when the test ends. Under LOCALDISK_TEST_SECCOMP
// it runs through the seccomp launcher, which execs bin in its place.
func launchBare(t *testing.T, bin string, args, env []string, endpoint string) *bare {
	t.Helper()
	b := &bare{log: endpoint + ".log", seccomp: testutil.Seccomp()}
	logFile, err := os.Create(b.log)
	if err != nil {
		t.Fatal(err)
	}
	name, args := testutil.SeccompCommand(t, b.seccomp, bin, args)
	cmd := exec.Command(name, args...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	err = cmd.Start()
	_ = logFile.Close()
	if err != nil {
		t.Fatalf("starting the plugin: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		if b.conn != nil {
			_ = b.conn.Close()
		}
		if t.Failed() {
			data, _ := os.ReadFile(b.log)
			t.Logf("plugin log:\n%s", data)
		}
	})
	deadline := time.Now().Add(endpointTimeout)
	for {
		if _, err := os.Stat(endpoint); err == nil {
			break
		}
		select {
		case <-done:
			data, _ := os.ReadFile(b.log)
			t.Fatalf("the plugin exited before creating its endpoint:\n%s", data)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no socket at %s within %v", endpoint, endpointTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if b.conn, err = grpc.NewClient("unix://"+endpoint, grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
		t.Fatal(err)
	}
	return b
}

// probe calls Probe, waiting (up to Mesos's deadline) until the socket is
// served: a stale socket file may still be there when the plugin starts.
// Under the seccomp launcher, the log must then show the fallbacks.
func (b *bare) probe(t *testing.T) {
	t.Helper()
	ctx, cancel := rpcContext()
	defer cancel()
	if _, err := csi.NewIdentityClient(b.conn).Probe(ctx, &csi.ProbeRequest{}, grpc.WaitForReady(true)); err != nil {
		t.Fatalf("Probe: %v", err)
	}
	if b.seccomp != "" {
		data, err := os.ReadFile(b.log)
		if err == nil {
			err = testutil.CheckSeccompLog(b.seccomp, string(data))
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

func (b *bare) nodeID(t *testing.T) string {
	t.Helper()
	ctx, cancel := rpcContext()
	defer cancel()
	resp, err := csi.NewNodeClient(b.conn).NodeGetInfo(ctx, &csi.NodeGetInfoRequest{})
	if err != nil {
		t.Fatalf("NodeGetInfo: %v", err)
	}
	return resp.GetNodeId()
}

// baseEnv is the test's environment without anything the plugin reads.
func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CSI_ENDPOINT=") && !strings.HasPrefix(kv, "MESOS_AGENT_ID=") &&
			!strings.HasPrefix(kv, "LOCALDISK_") {
			env = append(env, kv)
		}
	}
	return env
}

// staleSocket leaves a socket file at path that nobody serves, as a plugin
// container killed by Mesos does.
func staleSocket(t *testing.T, path string) {
	t.Helper()
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	l.SetUnlinkOnClose(false)
	_ = l.Close()
}

// TestMesos01_LaunchWithEnvOnly launches the plugin as Mesos does, with no
// argument at all: the endpoint comes from CSI_ENDPOINT (in an existing
// mesos-csi-XXXXXX directory, over a stale socket file), the node ID from
// MESOS_AGENT_ID, everything else from LOCALDISK_* variables.
func TestMesos01_LaunchWithEnvOnly(t *testing.T) {
	testutil.RequireRoot(t)
	bin := testutil.BuildPlugin(t)
	dir := testutil.ShortTempDir(t)
	work := filepath.Join(dir, "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	disk := testutil.LoopDisk(t, dir, 64, "ext4")
	config := testutil.WriteConfig(t, dir, fmt.Sprintf(
		`[{"name":"disk","type":"SCALAR","scalar":{"value":100}},
		  {"name":"disk","type":"SCALAR","scalar":{"value":64},"disk":{"source":{"type":"MOUNT","mount":{"root":%q}}}}]`, disk))
	hostname, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	agentID := newUUID() + "-S3"

	// launch starts the plugin with only environment variables (and args);
	// a stale socket is left at the endpoint first unless name is "fresh".
	launch := func(t *testing.T, name string, args []string, env ...string) (*bare, string) {
		endpointDir, err := os.MkdirTemp(dir, "mesos-csi-")
		if err != nil {
			t.Fatal(err)
		}
		endpoint := filepath.Join(endpointDir, "endpoint.sock")
		if name != "fresh" {
			staleSocket(t, endpoint)
		}
		state := filepath.Join(dir, "state-"+name)
		env = append(baseEnv(), append(env, "CSI_ENDPOINT=unix://"+endpoint,
			"LOCALDISK_STATE_DIR="+state, "LOCALDISK_CONFIG="+config, "LOCALDISK_WORK_DIR="+work)...)
		b := launchBare(t, bin, args, env, endpoint)
		b.probe(t)
		fi, err := os.Lstat(endpoint)
		if err != nil || fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != 0o600 {
			t.Errorf("endpoint %s: %v (%v), want a socket of mode 0600", endpoint, fi.Mode(), err)
		}
		return b, state
	}

	t.Run("node ID from MESOS_AGENT_ID", func(t *testing.T) {
		b, state := launch(t, "agent", nil, "MESOS_AGENT_ID="+agentID)
		if got := b.nodeID(t); got != agentID {
			t.Errorf("node ID %q, want MESOS_AGENT_ID %q", got, agentID)
		}
		ctx, cancel := rpcContext()
		defer cancel()
		// The pools come from LOCALDISK_CONFIG (Mesos resources: ROOT at
		// LOCALDISK_WORK_DIR), the records go to LOCALDISK_STATE_DIR.
		resp, err := csi.NewControllerClient(b.conn).CreateVolume(ctx, &csi.CreateVolumeRequest{
			Name: newUUID(), CapacityRange: &csi.CapacityRange{RequiredBytes: 8 * mib, LimitBytes: 8 * mib},
			VolumeCapabilities: []*csi.VolumeCapability{snw}, Parameters: map[string]string{"pool": rootPool},
		})
		if err != nil {
			t.Fatalf("CreateVolume in pool %q: %v", rootPool, err)
		}
		v := resp.GetVolume()
		if topo := v.GetAccessibleTopology(); len(topo) != 1 || topo[0].GetSegments()[layout.TopologyKey] != agentID {
			t.Errorf("accessible_topology %v, want node %q", topo, agentID)
		}
		if _, err := os.Stat(filepath.Join(state, "volumes", v.GetVolumeId()+".json")); err != nil {
			t.Errorf("no record in LOCALDISK_STATE_DIR: %v", err)
		}
		if _, err := os.Stat(filepath.Join(work, "localdisk", "volumes", v.GetVolumeId())); err != nil {
			t.Errorf("the ROOT volume is not under LOCALDISK_WORK_DIR: %v", err)
		}
	})
	t.Run("node ID falls back to the hostname", func(t *testing.T) {
		b, _ := launch(t, "fresh", nil)
		if got := b.nodeID(t); got != hostname {
			t.Errorf("node ID %q, want the hostname %q", got, hostname)
		}
	})
	t.Run("--node-id wins over MESOS_AGENT_ID", func(t *testing.T) {
		b, _ := launch(t, "flag", []string{"--node-id", "explicit-node"}, "MESOS_AGENT_ID="+agentID)
		if got := b.nodeID(t); got != "explicit-node" {
			t.Errorf("node ID %q, want --node-id's %q", got, "explicit-node")
		}
	})
}

// hasPluginCap reports whether the response lists the service.
func hasPluginCap(resp *csi.GetPluginCapabilitiesResponse, svc csi.PluginCapability_Service_Type) bool {
	for _, c := range resp.GetCapabilities() {
		if c.GetService().GetType() == svc {
			return true
		}
	}
	return false
}

func hasControllerCap(resp *csi.ControllerGetCapabilitiesResponse, rpc csi.ControllerServiceCapability_RPC_Type) bool {
	for _, c := range resp.GetCapabilities() {
		if c.GetRpc().GetType() == rpc {
			return true
		}
	}
	return false
}

func hasNodeCap(resp *csi.NodeGetCapabilitiesResponse, rpc csi.NodeServiceCapability_RPC_Type) bool {
	for _, c := range resp.GetCapabilities() {
		if c.GetRpc().GetType() == rpc {
			return true
		}
	}
	return false
}

// startupSequence makes the calls Mesos makes when it connects to a plugin,
// in its order, and checks what Mesos checks.
func startupSequence(t *testing.T, conn *grpc.ClientConn) {
	t.Helper()
	ctx, cancel := rpcContext()
	defer cancel()
	id := csi.NewIdentityClient(conn)
	if _, err := id.Probe(ctx, &csi.ProbeRequest{}); err != nil {
		t.Fatalf("Probe: %v (Mesos fails the endpoint)", err)
	}
	pc, err := id.GetPluginCapabilities(ctx, &csi.GetPluginCapabilitiesRequest{})
	if err != nil {
		t.Fatalf("GetPluginCapabilities: %v", err)
	}
	if !hasPluginCap(pc, csi.PluginCapability_Service_CONTROLLER_SERVICE) {
		t.Errorf("GetPluginCapabilities %v lacks CONTROLLER_SERVICE", pc)
	}
	// GetPluginInfo once per service, in parallel.
	infos := make(chan *csi.GetPluginInfoResponse, 2)
	errs := make(chan error, 2)
	for range 2 {
		go func() {
			r, err := id.GetPluginInfo(ctx, &csi.GetPluginInfoRequest{})
			infos <- r
			errs <- err
		}()
	}
	a, b := <-infos, <-infos
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("GetPluginInfo: %v", err)
		}
	}
	if a.GetName() != b.GetName() || a.GetVendorVersion() != b.GetVendorVersion() {
		t.Errorf("GetPluginInfo answered %v and %v", a, b)
	}
	if a.GetName() != driverName || a.GetVendorVersion() == "" {
		t.Errorf("GetPluginInfo = %v, want name %q and a version", a, driverName)
	}
	if os.Getenv(testutil.BinEnv) == "" && a.GetVendorVersion() != testutil.PluginVersion {
		t.Errorf("vendor_version %q, want %q", a.GetVendorVersion(), testutil.PluginVersion)
	}
	cc, err := csi.NewControllerClient(conn).ControllerGetCapabilities(ctx, &csi.ControllerGetCapabilitiesRequest{})
	if err != nil {
		t.Fatalf("ControllerGetCapabilities: %v", err)
	}
	if hasControllerCap(cc, csi.ControllerServiceCapability_RPC_PUBLISH_UNPUBLISH_VOLUME) {
		t.Errorf("ControllerGetCapabilities advertises PUBLISH_UNPUBLISH_VOLUME: Mesos would call NodeGetInfo and ControllerPublishVolume")
	}
	nc, err := csi.NewNodeClient(conn).NodeGetCapabilities(ctx, &csi.NodeGetCapabilitiesRequest{})
	if err != nil {
		t.Fatalf("NodeGetCapabilities: %v", err)
	}
	if !hasNodeCap(nc, csi.NodeServiceCapability_RPC_STAGE_UNSTAGE_VOLUME) {
		t.Errorf("NodeGetCapabilities %v lacks STAGE_UNSTAGE_VOLUME", nc)
	}
}

// TestMesos02_StartupSequence makes Mesos's start-up calls in order, on a
// healthy plugin and on one whose PATH disk is missing after a reboot:
// Probe must stay OK, or Mesos gives up on the whole plugin.
func TestMesos02_StartupSequence(t *testing.T) {
	a := startAgent(t, setup{RootMB: 64, Paths: []pathDisk{{DiskMiB: 64, MB: 32}}})
	startupSequence(t, a.p.Conn())
	a.mustCreate(newUUID(), 4*mib, map[string]string{"pool": a.pathPool(0)})

	a.p.Stop()
	testutil.UnplugDisk(t, a.pathRoots[0])
	a.p.Restart()
	startupSequence(t, a.p.Conn())
	if n := a.mustCapacity(map[string]string{"pool": a.pathPool(0)}); n != 0 {
		t.Errorf("GetCapacity of the pool whose disk is missing = %d, want 0", n)
	}
}

// TestMesos03_ControllerCapabilities checks the three controller
// capabilities Mesos needs, and that each RPC they stand for is served.
func TestMesos03_ControllerCapabilities(t *testing.T) {
	a := startAgent(t, setup{RootMB: 64})
	ctx, cancel := rpcContext()
	defer cancel()
	cc, err := a.p.Controller().ControllerGetCapabilities(ctx, &csi.ControllerGetCapabilitiesRequest{})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []csi.ControllerServiceCapability_RPC_Type{
		csi.ControllerServiceCapability_RPC_CREATE_DELETE_VOLUME,
		csi.ControllerServiceCapability_RPC_LIST_VOLUMES,
		csi.ControllerServiceCapability_RPC_GET_CAPACITY,
	} {
		if !hasControllerCap(cc, c) {
			t.Errorf("ControllerGetCapabilities lacks %v", c)
		}
	}
	v := a.mustCreate(newUUID(), 8*mib, nil)
	if _, ok := a.list()[v.GetVolumeId()]; !ok {
		t.Errorf("ListVolumes does not list the volume just created")
	}
	if n := a.mustCapacity(map[string]string{"pool": rootPool}); n != 56*mib {
		t.Errorf("GetCapacity = %d, want %d", n, 56*mib)
	}
	if err := a.delete(v.GetVolumeId()); err != nil {
		t.Errorf("DeleteVolume: %v", err)
	}
}
