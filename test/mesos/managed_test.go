package mesos

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/localdisk-csi/localdisk/test/testutil"
)

// devOf is the device of the filesystem that path is on.
func devOf(t *testing.T, path string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatalf("stat %s: %v", path, err)
	}
	return st.Dev
}

// TestMesos25_ManagedPluginMountsPropagate runs the plugin as Mesos runs a
// managed plugin: in a container of its own (a separate mount namespace)
// serving both services on CSI_ENDPOINT, with the mount root shared with
// the host (Mesos's BIDIRECTIONAL host-path volume). What the plugin
// mounts and unmounts there must be seen on the host, where the tasks are.
func TestMesos25_ManagedPluginMountsPropagate(t *testing.T) {
	a := newAgent(t, eachKind)
	root := a.mountRoot()
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(root, root, "", unix.MS_BIND, ""); err != nil {
		t.Fatalf("bind-mounting the mount root: %v", err)
	}
	t.Cleanup(func() { _ = unix.Unmount(root, unix.MNT_DETACH) })
	if err := unix.Mount("", root, "", unix.MS_SHARED, ""); err != nil {
		t.Fatalf("sharing the mount root: %v", err)
	}
	unshare, err := exec.LookPath("unshare")
	if err != nil {
		t.Fatalf("unshare(1) (util-linux) is needed to give the plugin a mount namespace: %v", err)
	}
	container := filepath.Join(a.dir, "container.sh")
	script := fmt.Sprintf("#!/bin/sh\nexec %s --mount --propagation unchanged -- %s \"$@\"\n", unshare, a.bin)
	if err := os.WriteFile(container, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	a.bin = container
	a.start()
	host, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", a.p.Pid())); err != nil || ns == host {
		t.Fatalf("the plugin's mount namespace is %q (%v), want one of its own (the host's is %q)", ns, err, host)
	}

	vols := a.oneOfEach() // the controller service, on the same endpoint
	pools := map[string]string{"root": a.work, "path": a.pathRoots[0], "mount": a.mountRoots[0]}
	for _, v := range vols {
		a.mustMount(v.id, v.ctx) // the node service
		wantMounts(t, a.mountPath(v.id), a.mountsOf(v.id, a.staging(v.id), a.target(v.id))...)
		if devOf(t, a.target(v.id)) != devOf(t, pools[v.kind]) {
			t.Errorf("%s: the host's target is not on the pool's disk", v.kind)
		}
		writeFile(t, filepath.Join(a.target(v.id), "from-host"), v.kind)
		wantFile(t, filepath.Join(a.shown(v), "from-host"), v.kind)
	}
	for _, v := range vols {
		a.mustUnmount(v.id)
		wantMounts(t, a.mountPath(v.id))
		a.removeMountPath(v.id)
		a.mustMount(v.id, v.ctx)
		wantFile(t, filepath.Join(a.target(v.id), "from-host"), v.kind)
		a.mustUnmount(v.id)
	}
}

// csiPluginInfo is the part of Mesos's CSIPluginInfo (a file in the agent's
// --csi_plugin_config_dir) for an unmanaged plugin.
type csiPluginInfo struct {
	Type      string `json:"type"`
	Name      string `json:"name"`
	Endpoints []struct {
		Service  string `json:"csi_service"`
		Endpoint string `json:"endpoint"`
	} `json:"endpoints"`
}

// TestMesos26_UnmanagedPluginForIsolator runs the plugin as an operator
// would for the CSI volume isolator: started on its own (flags, no Mesos
// environment, native configuration), named with its endpoint in a
// --csi_plugin_config_dir file. The agent reads that file, connects to the
// endpoint of each service, makes its start-up calls, and publishes a
// pre-provisioned volume for containers, by ID and context only.
func TestMesos26_UnmanagedPluginForIsolator(t *testing.T) {
	testutil.RequireRoot(t)
	dir := testutil.ShortTempDir(t)
	disk := testutil.LoopDisk(t, dir, 64, "ext4")
	config := testutil.WriteConfig(t, dir, fmt.Sprintf(`pools:
- name: local
  kind: root
  path: %s/data
  capacity: 64Mi
- name: ssd
  kind: path
  path: %s
  capacity: 32Mi
`, dir, disk))
	if err := os.Mkdir(filepath.Join(dir, "run"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := testutil.StartPlugin(t, testutil.BuildPlugin(t), testutil.PluginOptions{
		Endpoint: filepath.Join(dir, "run", "localdisk.sock"), NodeID: "node-1",
		StateDir: filepath.Join(dir, "state"), ConfigPath: config,
	})
	a := &agent{t: t, dir: dir, work: filepath.Join(dir, "work"), p: p}

	// The operator's plugin configuration, as the agent reads it.
	confDir := filepath.Join(dir, "csi-plugins")
	if err := os.Mkdir(confDir, 0o755); err != nil {
		t.Fatal(err)
	}
	confJSON := fmt.Sprintf(`{"type": %q, "name": %q, "endpoints": [
	  {"csi_service": "CONTROLLER_SERVICE", "endpoint": %q},
	  {"csi_service": "NODE_SERVICE", "endpoint": %q}]}`, driverName, pluginName, p.Address(), p.Address())
	writeFile(t, filepath.Join(confDir, "localdisk.json"), confJSON)
	var info csiPluginInfo
	if err := json.Unmarshal([]byte(confJSON), &info); err != nil {
		t.Fatal(err)
	}
	conns := map[string]*grpc.ClientConn{}
	for _, e := range info.Endpoints {
		sock := strings.TrimPrefix(e.Endpoint, "unix://")
		if fi, err := os.Stat(sock); err != nil || fi.Mode().Type() != os.ModeSocket {
			t.Fatalf("%s endpoint %s is not a socket: %v", e.Service, e.Endpoint, err)
		}
		conn, err := grpc.NewClient(e.Endpoint, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		conns[e.Service] = conn
	}
	for _, svc := range []string{"CONTROLLER_SERVICE", "NODE_SERVICE"} {
		startupSequence(t, conns[svc])
	}

	// The operator pre-provisions a volume, then systemd restarts the plugin.
	ctx, cancel := rpcContext()
	defer cancel()
	resp, err := csi.NewControllerClient(conns["CONTROLLER_SERVICE"]).CreateVolume(ctx, &csi.CreateVolumeRequest{
		Name: "db-data", CapacityRange: &csi.CapacityRange{RequiredBytes: 16 * mib, LimitBytes: 16 * mib},
		VolumeCapabilities: []*csi.VolumeCapability{snw}, Parameters: map[string]string{"pool": "ssd"},
	})
	if err != nil {
		t.Fatalf("pre-provisioning a volume: %v", err)
	}
	id, vctx := resp.GetVolume().GetVolumeId(), resp.GetVolume().GetVolumeContext()
	p.Restart()

	// A container with the volume RW; a second container finds it
	// published (no call); both end: unpublish, unstage, remove mounts/<id>.
	a.mustMount(id, vctx)
	writeFile(t, filepath.Join(a.target(id), "table"), "rows")
	a.mustUnmount(id)
	a.removeMountPath(id)

	// A later container mounts it RO (the volume's mode is RO).
	if err := a.stage(id, vctx, sro); err != nil {
		t.Fatalf("NodeStageVolume: %v", err)
	}
	if err := a.publish(id, vctx, sro, true); err != nil {
		t.Fatalf("NodePublishVolume read-only: %v", err)
	}
	wantFile(t, filepath.Join(a.target(id), "table"), "rows")
	if !slices.Contains(mountOptions(t, a.target(id)), "ro") {
		t.Errorf("the read-only volume is mounted read-write")
	}
	a.mustUnmount(id)
	a.removeMountPath(id)

	// With target_path_exists in its configuration, Mesos makes the
	// target itself before NodePublishVolume.
	if err := os.MkdirAll(a.target(id), 0o755); err != nil {
		t.Fatal(err)
	}
	a.mustMount(id, vctx)
	wantMounts(t, a.mountPath(id), a.mountsOf(id, a.staging(id), a.target(id))...)
	wantFile(t, filepath.Join(a.target(id), "table"), "rows")
	a.mustUnmount(id)
	a.removeMountPath(id)
}
