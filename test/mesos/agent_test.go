package mesos

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/pool"
	"github.com/localdisk-csi/localdisk/test/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

const (
	// driverName is the plugin's CSI name: the `type` of Mesos's
	// CSIPluginInfo, and a directory of its mount paths.
	driverName = "localdisk.csi.io"
	// pluginName is the `name` of Mesos's CSIPluginInfo.
	pluginName = "local"
	// mib is the unit of every capacity.
	mib = int64(1) << 20
	// rootPool and mountPool are the pools that Mesos agent resources give.
	rootPool  = "root"
	mountPool = "mount"
)

// pathDisk is a PATH disk resource: a loop disk of DiskMiB MiB whose
// root Mesos offers MB megabytes of.
type pathDisk struct {
	DiskMiB int
	MB      float64
}

// setup describes an agent's disks, as its --resources JSON would.
type setup struct {
	// RootMB is the plain disk resource (the ROOT pool at the agent's work
	// dir); 0 means none.
	RootMB float64
	// Paths are PATH disks, each a loop disk.
	Paths []pathDisk
	// Mounts are the sizes (MiB) of MOUNT disks, each a loop disk.
	Mounts []int
}

// agent plays a Mesos agent with a storage local resource provider for
// one localdisk plugin: it owns the agent's work dir, the plugin's state
// dir, the disks and the --resources JSON the plugin reads.
type agent struct {
	t          *testing.T
	dir        string // the test's directory
	work       string // the agent's work dir
	state      string // the plugin's state dir
	config     string // the --resources JSON file
	id         string // the agent ID (MESOS_AGENT_ID)
	bin        string // what StartPlugin runs
	res        []resource
	pathRoots  []string
	mountRoots []string
	p          *testutil.Plugin
}

// resource is the part of a Mesos Resource that an agent's --resources
// JSON holds for a disk.
type resource struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	Scalar struct {
		Value float64 `json:"value"`
	} `json:"scalar"`
	Disk *diskInfo `json:"disk,omitempty"`
}

type diskInfo struct {
	Source struct {
		Type  string `json:"type"`
		Path  *root  `json:"path,omitempty"`
		Mount *root  `json:"mount,omitempty"`
	} `json:"source"`
}

type root struct {
	Root string `json:"root"`
}

func diskResource(mb float64, kind, dir string) resource {
	r := resource{Name: "disk", Type: "SCALAR"}
	r.Scalar.Value = mb
	if kind != "" {
		r.Disk = &diskInfo{}
		r.Disk.Source.Type = kind
		if kind == "PATH" {
			r.Disk.Source.Path = &root{Root: dir}
		} else {
			r.Disk.Source.Mount = &root{Root: dir}
		}
	}
	return r
}

// newAgent makes the test's directory, the disks and the resources file;
// start launches the plugin.
func newAgent(t *testing.T, s setup) *agent {
	t.Helper()
	testutil.RequireRoot(t)
	a := &agent{t: t, dir: testutil.ShortTempDir(t), id: newUUID() + "-S0"}
	a.bin = testutil.BuildPlugin(t)
	a.work = filepath.Join(a.dir, "work")
	a.state = filepath.Join(a.dir, "state")
	if err := os.MkdirAll(a.work, 0o755); err != nil {
		t.Fatal(err)
	}
	if s.RootMB > 0 {
		a.res = append(a.res, diskResource(s.RootMB, "", ""))
	}
	for _, pd := range s.Paths {
		disk := testutil.LoopDisk(t, a.dir, pd.DiskMiB, "ext4")
		a.pathRoots = append(a.pathRoots, disk)
		a.res = append(a.res, diskResource(pd.MB, "PATH", disk))
	}
	for _, size := range s.Mounts {
		disk := testutil.LoopDisk(t, a.dir, size, "ext4")
		a.mountRoots = append(a.mountRoots, disk)
		a.res = append(a.res, diskResource(float64(size), "MOUNT", disk))
	}
	a.writeResources()
	return a
}

// startAgent is newAgent followed by start.
func startAgent(t *testing.T, s setup) *agent {
	t.Helper()
	a := newAgent(t, s)
	a.start()
	return a
}

// writeResources writes a.res as the agent's --resources JSON.
func (a *agent) writeResources() {
	a.t.Helper()
	data, err := json.MarshalIndent(a.res, "", "  ")
	if err != nil {
		a.t.Fatal(err)
	}
	a.config = testutil.WriteConfig(a.t, a.dir, string(data))
}

// start launches the plugin the way Mesos does: CSI_ENDPOINT names a socket
// in a fresh mesos-csi-XXXXXX directory and MESOS_AGENT_ID the agent.
func (a *agent) start() {
	a.t.Helper()
	endpointDir, err := os.MkdirTemp(a.dir, "mesos-csi-")
	if err != nil {
		a.t.Fatal(err)
	}
	a.p = testutil.StartPlugin(a.t, a.bin, testutil.PluginOptions{
		Endpoint:   filepath.Join(endpointDir, "endpoint.sock"),
		NodeID:     a.id,
		StateDir:   a.state,
		ConfigPath: a.config,
		Args:       []string{"--work-dir", a.work},
		MesosStyle: true,
	})
}

// restart stops the plugin and starts it again (re-reading its resources).
func (a *agent) restart() {
	a.t.Helper()
	a.p.Restart()
}

// reboot simulates a node reboot: the plugin dies, every mount under the
// agent's CSI directory is gone (the directories stay), every disk is
// mounted afresh, and the plugin starts again.
func (a *agent) reboot() {
	a.t.Helper()
	a.p.Kill()
	if _, err := testutil.DetachMounts(filepath.Join(a.work, "csi")); err != nil {
		a.t.Fatalf("reboot: %v", err)
	}
	for _, d := range append(append([]string{}, a.pathRoots...), a.mountRoots...) {
		testutil.RemountDisk(a.t, d)
	}
	a.p.Restart()
}

// pathPool is the name of the PATH pool of the i-th PATH disk: "path-"
// and a slug of its root (see pool.MesosPathPoolName).
func (a *agent) pathPool(i int) string { return pool.MesosPathPoolName(a.pathRoots[i]) }

// diskID is the volume ID of the i-th MOUNT disk: the pool name and a slug
// of the disk's root (see pool.DiskID).
func (a *agent) diskID(i int) string { return layout.DiskID(mountPool, a.mountRoots[i]) }

// Mesos's layout of mount paths: <work_dir>/csi/<type>/<name>/mounts/<id>/.
func (a *agent) mountRoot() string {
	return filepath.Join(a.work, "csi", driverName, pluginName, "mounts")
}
func (a *agent) mountPath(id string) string { return filepath.Join(a.mountRoot(), percentEncode(id)) }
func (a *agent) staging(id string) string   { return filepath.Join(a.mountPath(id), "staging") }
func (a *agent) target(id string) string    { return filepath.Join(a.mountPath(id), "target") }

// percentEncode encodes a volume ID for a path as Mesos does
// (process::http::encode): everything but letters, digits and "-_." is
// written %XX.
func percentEncode(s string) string {
	var b strings.Builder
	for _, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

// newUUID returns a random UUID, as Mesos names its operations.
func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
