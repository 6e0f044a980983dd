package load

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
)

// PoolName is the name of the ROOT pool of an Instance.
const PoolName = "bench"

// Instance is a plugin laid out in one directory on the disk under test:
//
//	DIR/csi.sock  DIR/plugin.log  DIR/pools.yaml
//	DIR/state/    the state dir
//	DIR/pool/     the ROOT pool "bench", capacity 1Pi (room is never the limit)
type Instance struct {
	Dir, Bin                   string
	Endpoint                   string // unix://DIR/csi.sock
	StateDir, PoolDir, LogPath string
	ConfigPath                 string
	LogLevel                   string // --log-level (default info, as in production)
	Proc                       *Process
}

// NewInstance writes the pools file of an instance in dir (which must
// exist, with a short path: it holds the socket).
func NewInstance(dir, bin string) (*Instance, error) {
	pool := filepath.Join(dir, "pool")
	in, err := NewInstanceWithPools(dir, bin,
		fmt.Sprintf("pools:\n- name: %s\n  kind: root\n  path: %s\n  capacity: 1Pi\n", PoolName, pool))
	if in != nil {
		in.PoolDir = pool
	}
	return in, err
}

// NewInstanceWithPools writes the pools file poolsYAML instead; PoolDir
// is empty (the pools are the caller's).
func NewInstanceWithPools(dir, bin, poolsYAML string) (*Instance, error) {
	in := &Instance{Dir: dir, Bin: bin, Endpoint: "unix://" + filepath.Join(dir, "csi.sock"),
		StateDir: filepath.Join(dir, "state"),
		LogPath:  filepath.Join(dir, "plugin.log"), ConfigPath: filepath.Join(dir, "pools.yaml"), LogLevel: "info"}
	if err := os.WriteFile(in.ConfigPath, []byte(poolsYAML), 0o644); err != nil {
		return nil, err
	}
	return in, nil
}

// Start starts the plugin and waits for its first successful Probe
// (polled every millisecond); it returns the time from the process start
// to that answer.
func (in *Instance) Start(ctx context.Context) (time.Duration, error) {
	if in.Proc != nil && !in.Proc.Exited() {
		return 0, fmt.Errorf("already running (pid %d)", in.Proc.Pid())
	}
	args := []string{"serve", "--endpoint", in.Endpoint, "--node-id", "bench-node",
		"--state-dir", in.StateDir, "--config", in.ConfigPath, "--log-level", in.LogLevel}
	start := time.Now()
	p, err := Start(in.Bin, args, in.LogPath)
	if err != nil {
		return 0, err
	}
	in.Proc = p
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := p.WaitReady(ctx, in.Endpoint, time.Millisecond); err != nil {
		_ = p.Stop(5 * time.Second)
		return 0, err
	}
	return time.Since(start), nil
}

// Stop stops the plugin if it runs (SIGTERM; SIGKILL after 30 s).
func (in *Instance) Stop() error {
	if in.Proc == nil {
		return nil
	}
	err := in.Proc.Stop(30 * time.Second)
	in.Proc = nil
	return err
}

// Pid is the running plugin's process ID (0 if none).
func (in *Instance) Pid() int {
	if in.Proc == nil {
		return 0
	}
	return in.Proc.Pid()
}

// PopulateTo leaves the stopped instance's state holding n ready volumes:
// it starts the plugin, creates one volume through CreateVolume as the
// template, stops it, and writes the rest with Populate.
func (in *Instance) PopulateTo(ctx context.Context, n int) error {
	if _, err := in.Start(ctx); err != nil {
		return err
	}
	conn, err := Dial(in.Endpoint)
	if err != nil {
		return err
	}
	resp, err := csi.NewControllerClient(conn).CreateVolume(ctx, &csi.CreateVolumeRequest{
		Name:               "populate-template",
		CapacityRange:      &csi.CapacityRange{RequiredBytes: 1 << 20, LimitBytes: 1 << 20},
		VolumeCapabilities: []*csi.VolumeCapability{MountCapability()},
	})
	conn.Close()
	if serr := in.Stop(); err == nil && serr != nil {
		err = fmt.Errorf("stopping the plugin: %w", serr)
	}
	if err != nil {
		return err
	}
	return Populate(in.StateDir, in.PoolDir, resp.GetVolume().GetVolumeId(), n)
}
