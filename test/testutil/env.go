package testutil

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"

	"github.com/localdisk-csi/localdisk/driver/layout"
)

// MiB is a mebibyte, the unit of every capacity localdisk reports.
const MiB = 1 << 20

// The pools an Env configures.
const (
	RootPool  = "root"  // ROOT, <dir>/root, capacity EnvOptions.RootCapacity
	PathPool  = "data"  // PATH, a loop ext4 disk, capacity EnvOptions.PathCapacity
	MountPool = "disks" // MOUNT, EnvOptions.MountDisks loop ext4 disks
	// DevicePool is MOUNT, EnvOptions.DeviceDisks blank 32 MiB loop devices
	// that the plugin formats (ext4) at stage and erases (zero) at delete.
	DevicePool = "devs"
)

// RPCTimeout bounds each RPC an Env makes.
const RPCTimeout = 60 * time.Second

// EnvOptions say what NewEnv sets up.
type EnvOptions struct {
	// Bin is the plugin binary; default BuildPlugin.
	Bin string
	// Dir is the test directory (a ShortTempDir); default a new one. Give
	// it to mount something (a tiny state filesystem) before the plugin.
	Dir string
	// StateDir is the plugin's state dir; default <dir>/state.
	StateDir string
	// RootCapacity and PathCapacity (MiB) default to 40.
	RootCapacity, PathCapacity int
	// PathDiskMiB is the size of the PATH pool's disk; default 64.
	PathDiskMiB int
	// MountDisks is the number of 32 MiB disks of the MOUNT pool; default 2.
	MountDisks int
	// DeviceDisks is the number of devices of DevicePool; none (and no such
	// pool) by default.
	DeviceDisks int
	// Env is the plugin's extra environment (PluginOptions.Env).
	Env []string
	// Seccomp is PluginOptions.Seccomp: empty follows LOCALDISK_TEST_SECCOMP.
	Seccomp string
	// Snapshots is the ROOT and PATH pools' `snapshots` option ("copy").
	Snapshots string
	// PathFS is the PATH pool's filesystem (LoopDisk's fstype; default
	// ext4), PathQuota its `quota` option (btrfs: "required" makes its
	// volumes subvolumes).
	PathFS, PathQuota string
}

// Env is a running plugin serving a ROOT, a PATH and a MOUNT pool, with a
// directory for the CO's staging and target paths. Its methods are meant
// for the test's goroutine, except the RPC wrappers, which any goroutine
// may call.
type Env struct {
	T        testing.TB
	Dir      string
	RootDir  string   // the ROOT pool's root
	PathDisk string   // the PATH pool's root (a loop disk)
	Disks    []string // the MOUNT pool's disks
	Devices  []string // DevicePool's devices
	StateDir string
	CODir    string // where Paths puts staging and target paths
	Config   string
	Caps     map[string]int64 // capacity of the ROOT, PATH and device pools
	P        *Plugin
	seccomp  string // EnvOptions.Seccomp
}

// NewEnv sets up the pools and starts the plugin.
func NewEnv(t testing.TB, o EnvOptions) *Env {
	t.Helper()
	RequireRoot(t)
	if o.Bin == "" {
		o.Bin = BuildPlugin(t)
	}
	if o.Dir == "" {
		o.Dir = ShortTempDir(t)
	}
	if o.StateDir == "" {
		o.StateDir = filepath.Join(o.Dir, "state")
	}
	o.RootCapacity = cmp0(o.RootCapacity, 40)
	o.PathCapacity = cmp0(o.PathCapacity, 40)
	o.PathDiskMiB = cmp0(o.PathDiskMiB, 64)
	o.MountDisks = cmp0(o.MountDisks, 2)
	e := &Env{T: t, Dir: o.Dir, RootDir: filepath.Join(o.Dir, "root"), StateDir: o.StateDir,
		CODir: filepath.Join(o.Dir, "co"), seccomp: o.Seccomp,
		Caps: map[string]int64{RootPool: int64(o.RootCapacity) * MiB, PathPool: int64(o.PathCapacity) * MiB}}
	e.PathDisk = LoopDisk(t, o.Dir, o.PathDiskMiB, cmp.Or(o.PathFS, "ext4"))
	for range o.MountDisks {
		e.Disks = append(e.Disks, LoopDisk(t, o.Dir, 32, "ext4"))
	}
	snaps, pathQuota := "", ""
	if o.Snapshots != "" {
		snaps = "  snapshots: " + o.Snapshots + "\n"
	}
	if o.PathQuota != "" {
		pathQuota = "  quota: " + o.PathQuota + "\n"
	}
	cfg := fmt.Sprintf("pools:\n- name: %s\n  kind: root\n  path: %s\n  capacity: %dMi\n%s"+
		"- name: %s\n  kind: path\n  path: %s\n  capacity: %dMi\n%s%s- name: %s\n  kind: mount\n  disks:\n",
		RootPool, e.RootDir, o.RootCapacity, snaps, PathPool, e.PathDisk, o.PathCapacity, snaps, pathQuota, MountPool)
	for _, d := range e.Disks {
		cfg += "  - path: " + d + "\n"
	}
	for range o.DeviceDisks {
		e.Devices = append(e.Devices, LoopDevice(t, o.Dir, 32))
	}
	if len(e.Devices) > 0 {
		cfg += "- name: " + DevicePool + "\n  kind: mount\n  erase: zero\n  disks:\n"
		for _, d := range e.Devices {
			cfg += "  - device: " + d + "\n    fsType: ext4\n"
		}
	}
	e.Config = WriteConfig(t, o.Dir, cfg)
	if err := os.MkdirAll(e.CODir, 0o750); err != nil {
		t.Fatal(err)
	}
	e.P = StartPlugin(t, o.Bin, e.PluginOptions(o.Env))
	if len(e.Devices) > 0 {
		avail, _, err := e.Capacity(DevicePool)
		if err != nil || avail <= 0 {
			t.Fatalf("GetCapacity of the device pool: %d, %v", avail, err)
		}
		e.Caps[DevicePool] = avail
	}
	// Registered after the plugin, so it runs first: nothing the CO
	// mounted survives the test (reported only when the test passed, as
	// a failing test may stop anywhere).
	t.Cleanup(func() {
		detached, err := DetachMounts(e.CODir)
		if !t.Failed() && len(detached) > 0 {
			t.Errorf("left mounted under the CO's paths at the end of the test: %v", detached)
		}
		if err != nil {
			t.Errorf("detaching the CO's mounts: %v", err)
		}
	})
	return e
}

// For returns a copy of e that reports to t (a subtest of e's test): the
// same plugin and pools, with failures going to t.
func (e *Env) For(t testing.TB) *Env {
	c := *e
	c.T = t
	return &c
}

func cmp0(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// PluginOptions are the options the Env's plugin runs with, with env as its
// extra environment.
func (e *Env) PluginOptions(env []string) PluginOptions {
	return PluginOptions{Endpoint: filepath.Join(e.Dir, "csi.sock"), NodeID: "node-1",
		StateDir: e.StateDir, ConfigPath: e.Config, Env: env, Seccomp: e.seccomp}
}

// Ctx is a context for one RPC.
func (e *Env) Ctx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), RPCTimeout)
}

// MountCap is a mount capability with the given access mode.
func MountCap(mode csi.VolumeCapability_AccessMode_Mode) *csi.VolumeCapability {
	return &csi.VolumeCapability{
		AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
		AccessMode: &csi.VolumeCapability_AccessMode{Mode: mode},
	}
}

// RWO is the SINGLE_NODE_WRITER mount capability.
var RWO = MountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER)

// CreateReq is a CreateVolume as Mesos sends it: required == limit (0: no
// range), one capability, the parameters.
func CreateReq(name string, size int64, params map[string]string) *csi.CreateVolumeRequest {
	r := &csi.CreateVolumeRequest{Name: name, Parameters: params, VolumeCapabilities: []*csi.VolumeCapability{RWO}}
	if size > 0 {
		r.CapacityRange = &csi.CapacityRange{RequiredBytes: size, LimitBytes: size}
	}
	return r
}

// Create calls CreateVolume with CreateReq.
func (e *Env) Create(name string, size int64, params map[string]string) (*csi.Volume, error) {
	ctx, cancel := e.Ctx()
	defer cancel()
	r, err := e.P.Controller().CreateVolume(ctx, CreateReq(name, size, params))
	return r.GetVolume(), err
}

// MustCreate is Create that fails the test on error.
func (e *Env) MustCreate(name string, size int64, params map[string]string) *csi.Volume {
	e.T.Helper()
	v, err := e.Create(name, size, params)
	if err != nil {
		e.T.Fatalf("CreateVolume %q: %v", name, err)
	}
	return v
}

// Delete calls DeleteVolume.
func (e *Env) Delete(id string) error {
	ctx, cancel := e.Ctx()
	defer cancel()
	_, err := e.P.Controller().DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: id})
	return err
}

// Stage calls NodeStageVolume with RWO.
func (e *Env) Stage(id, staging string) error {
	ctx, cancel := e.Ctx()
	defer cancel()
	_, err := e.P.Node().NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{
		VolumeId: id, StagingTargetPath: staging, VolumeCapability: RWO})
	return err
}

// Publish calls NodePublishVolume with RWO.
func (e *Env) Publish(id, staging, target string, ro bool) error {
	ctx, cancel := e.Ctx()
	defer cancel()
	_, err := e.P.Node().NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{
		VolumeId: id, StagingTargetPath: staging, TargetPath: target, VolumeCapability: RWO, Readonly: ro})
	return err
}

// Unpublish calls NodeUnpublishVolume.
func (e *Env) Unpublish(id, target string) error {
	ctx, cancel := e.Ctx()
	defer cancel()
	_, err := e.P.Node().NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: id, TargetPath: target})
	return err
}

// Unstage calls NodeUnstageVolume.
func (e *Env) Unstage(id, staging string) error {
	ctx, cancel := e.Ctx()
	defer cancel()
	_, err := e.P.Node().NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: id, StagingTargetPath: staging})
	return err
}

// Must fails the test on err.
func (e *Env) Must(err error, what string) {
	e.T.Helper()
	if err != nil {
		e.T.Fatalf("%s: %v", what, err)
	}
}

// Paths returns a staging and a target path for a volume, Mesos style: the
// staging directory exists, the target's parent exists.
func (e *Env) Paths(key string) (staging, target string) {
	e.T.Helper()
	base := filepath.Join(e.CODir, key)
	staging = filepath.Join(base, "staging")
	if err := os.MkdirAll(staging, 0o750); err != nil {
		e.T.Fatal(err)
	}
	return staging, filepath.Join(base, "target")
}

// List returns every volume, following the pages of ListVolumes.
func (e *Env) List() ([]*csi.Volume, error) {
	var out []*csi.Volume
	token := ""
	for {
		ctx, cancel := e.Ctx()
		r, err := e.P.Controller().ListVolumes(ctx, &csi.ListVolumesRequest{StartingToken: token})
		cancel()
		if err != nil {
			return nil, err
		}
		for _, en := range r.GetEntries() {
			out = append(out, en.GetVolume())
		}
		if token = r.GetNextToken(); token == "" {
			return out, nil
		}
	}
}

// Capacity calls GetCapacity for one pool.
func (e *Env) Capacity(pool string) (available, maximum int64, err error) {
	ctx, cancel := e.Ctx()
	defer cancel()
	r, err := e.P.Controller().GetCapacity(ctx, &csi.GetCapacityRequest{Parameters: map[string]string{layout.ParamPool: pool}})
	return r.GetAvailableCapacity(), r.GetMaximumVolumeSize().GetValue(), err
}

// DiskSize is what the plugin counts for a MOUNT disk: its filesystem's
// size in whole MiB.
func DiskSize(t testing.TB, path string) int64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Blocks) * st.Bsize / MiB * MiB
}
