package testutil

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials/insecure"
)

const (
	// StartTimeout bounds how long StartPlugin and Restart wait for the
	// plugin to answer Probe with OK.
	StartTimeout = 30 * time.Second
	// StopTimeout bounds how long Stop waits for the plugin to exit after
	// SIGTERM before it kills it and fails the test.
	StopTimeout = 30 * time.Second
	// logTailBytes is how much of the plugin's log a failed test shows.
	logTailBytes = 32 << 10
)

// PluginOptions say how StartPlugin launches the plugin.
type PluginOptions struct {
	// Endpoint is the absolute path of the unix socket to serve on, without
	// the unix:// scheme; keep it short (see ShortTempDir). Required.
	Endpoint string
	// NodeID is passed as --node-id, or as MESOS_AGENT_ID with MesosStyle.
	// When empty, neither is passed and the plugin picks its default.
	NodeID string
	// StateDir is passed as --state-dir. Required, so that a test never
	// touches the node's real state directory.
	StateDir string
	// ConfigPath is passed as --config when not empty (see WriteConfig).
	// When empty, the plugin serves its embedded default pool.
	ConfigPath string
	// LogLevel is passed as --log-level; empty means "debug".
	LogLevel string
	// Args are appended to the command line, e.g. --driver-name.
	Args []string
	// Env holds "KEY=value" entries added to the plugin's environment,
	// which is otherwise the test's without CSI_ENDPOINT and MESOS_AGENT_ID.
	Env []string
	// MesosStyle launches the plugin the way a Mesos agent does: the
	// endpoint comes as CSI_ENDPOINT=unix://… and the node ID as
	// MESOS_AGENT_ID in the environment, and the command line has neither
	// --endpoint, --node-id nor the subcommand (serve is the default).
	MesosStyle bool
	// Seccomp runs the plugin under the seccomp launcher: "enosys" or
	// "eperm" (see SeccompEnv), or "off" for never. Empty follows
	// LOCALDISK_TEST_SECCOMP (Seccomp()). Under the launcher, every start
	// checks that the plugin logged its fallback to mount(2) (see
	// CheckSeccompLog).
	Seccomp string
}

// Plugin is a localdisk process started by StartPlugin for one test. Its
// methods must be called from the test's goroutine.
type Plugin struct {
	t    testing.TB
	bin  string
	opts PluginOptions
	// LogPath is the file that receives the plugin's standard output and
	// error, across restarts: the socket path plus ".log".
	LogPath string

	cmd  *exec.Cmd     // nil when not running
	done chan struct{} // closed when cmd has exited and waitErr is set
	// logStart is the size of LogPath before the last launch: what the
	// running process wrote begins there.
	logStart int64

	mu      sync.Mutex
	waitErr error
	conn    *grpc.ClientConn
}

// StartPlugin starts the plugin binary bin (see BuildPlugin) with opts and
// waits until it answers Probe with OK, failing the test if it does not
// within StartTimeout. The process's output goes to p.LogPath; if the test
// fails, the end of that log is shown. When the test ends, the process
// (with any child it left in its process group) is killed if still
// running, so that no process outlives the test.
func StartPlugin(t testing.TB, bin string, opts PluginOptions) *Plugin {
	t.Helper()
	if !filepath.IsAbs(opts.Endpoint) {
		t.Fatalf("StartPlugin: Endpoint must be an absolute socket path, got %q", opts.Endpoint)
	}
	if opts.StateDir == "" {
		t.Fatal("StartPlugin: StateDir is required")
	}
	p := &Plugin{t: t, bin: bin, opts: opts, LogPath: opts.Endpoint + ".log"}
	t.Cleanup(p.cleanup)
	p.start()
	return p
}

// Address is the plugin's endpoint as a gRPC target: unix:///path.
func (p *Plugin) Address() string { return "unix://" + p.opts.Endpoint }

// Options returns the options the plugin was started with.
func (p *Plugin) Options() PluginOptions { return p.opts }

// SeccompMode is the launcher mode the plugin runs in: "enosys", "eperm",
// or "" (no filter).
func (p *Plugin) SeccompMode() string {
	switch p.opts.Seccomp {
	case "":
		return Seccomp()
	case SeccompOff:
		return ""
	}
	return p.opts.Seccomp
}

// Running reports whether the plugin process is running.
func (p *Plugin) Running() bool {
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// Pid returns the process ID of the plugin, or 0 when it is not started.
func (p *Plugin) Pid() int {
	if p.cmd == nil {
		return 0
	}
	return p.cmd.Process.Pid
}

// args builds the command line (without the binary) from the options.
func (p *Plugin) args() []string {
	o := p.opts
	var args []string
	if !o.MesosStyle {
		args = append(args, "serve", "--endpoint", p.Address())
		if o.NodeID != "" {
			args = append(args, "--node-id", o.NodeID)
		}
	}
	args = append(args, "--state-dir", o.StateDir)
	if o.ConfigPath != "" {
		args = append(args, "--config", o.ConfigPath)
	}
	level := o.LogLevel
	if level == "" {
		level = "debug"
	}
	args = append(args, "--log-level", level)
	return append(args, o.Args...)
}

// env builds the environment from the test's and the options.
func (p *Plugin) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CSI_ENDPOINT=") && !strings.HasPrefix(kv, "MESOS_AGENT_ID=") {
			env = append(env, kv)
		}
	}
	if p.opts.MesosStyle {
		env = append(env, "CSI_ENDPOINT="+p.Address())
		if p.opts.NodeID != "" {
			env = append(env, "MESOS_AGENT_ID="+p.opts.NodeID)
		}
	}
	return append(env, p.opts.Env...)
}

// start launches the process and waits until it is ready.
func (p *Plugin) start() {
	p.t.Helper()
	p.launch()
	p.waitReady()
}

// launch starts the process, its output appended to p.LogPath, in its own
// process group (so that Kill and the cleanup reach its children, mkfs...)
// and with SIGKILL as its parent-death signal (if the test binary dies
// first); p.done is closed once it has exited.
func (p *Plugin) launch() {
	p.t.Helper()
	logFile, err := os.OpenFile(p.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		p.t.Fatalf("opening the plugin log: %v", err)
	}
	if fi, err := logFile.Stat(); err == nil {
		p.logStart = fi.Size()
	}
	name, args := SeccompCommand(p.t, p.SeccompMode(), p.bin, p.args())
	fmt.Fprintf(logFile, "=== %s testutil: starting %s %s\n",
		time.Now().Format(time.RFC3339Nano), name, strings.Join(args, " "))
	cmd := exec.Command(name, args...)
	cmd.Env = p.env()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	done, err := startLocked(cmd, func(err error) {
		p.mu.Lock()
		p.waitErr = err
		p.mu.Unlock()
	})
	_ = logFile.Close() // the child holds its own descriptor
	if err != nil {
		p.t.Fatalf("starting the plugin: %v", err)
	}
	p.cmd, p.done = cmd, done
}

// startLocked starts cmd from an OS thread that no other goroutine uses and
// that lives until cmd has exited, then reports the exit to exited and
// closes the returned channel. The kernel sends Pdeathsig when the *thread*
// that started the child ends (golang/go#27505), and a goroutine that
// returns while locked to its thread (as tests that drop a capability do)
// ends that thread: from an ordinary thread, the child could be killed at
// any moment.
func startLocked(cmd *exec.Cmd, exited func(error)) (chan struct{}, error) {
	started := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		exited(cmd.Wait())
		close(done)
	}()
	if err := <-started; err != nil {
		return nil, err
	}
	return done, nil
}

// waitReady polls Probe on a fresh connection until it answers OK, checks
// that a plugin under the seccomp launcher logged its fallbacks, then
// makes sure the cached connection (if any) is connected again.
func (p *Plugin) waitReady() {
	p.t.Helper()
	deadline := time.Now().Add(StartTimeout)
	var lastErr error
	for {
		select {
		case <-p.done:
			p.t.Fatalf("the plugin exited while starting: %v\n%s", p.exitErr(), p.LogTail())
		default:
		}
		if _, err := os.Stat(p.opts.Endpoint); err != nil {
			lastErr = err
		} else if lastErr = p.probeOnce(); lastErr == nil {
			break
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("the plugin did not answer Probe with OK within %v: %v\n%s",
				StartTimeout, lastErr, p.LogTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if mode := p.SeccompMode(); mode != "" {
		if err := CheckSeccompLog(mode, p.runLog()); err != nil {
			p.t.Fatalf("%v\n%s", err, p.LogTail())
		}
	}
	p.mu.Lock()
	conn := p.conn
	p.mu.Unlock()
	if conn != nil {
		if err := waitConnected(conn, 10*time.Second); err != nil {
			p.t.Fatalf("reconnecting to the restarted plugin: %v", err)
		}
	}
}

// probeOnce calls Probe on a new connection, failing fast.
func (p *Plugin) probeOnce() error {
	conn, err := grpc.NewClient(p.Address(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = csi.NewIdentityClient(conn).Probe(ctx, &csi.ProbeRequest{})
	return err
}

// waitConnected connects conn and waits until it is ready.
func waitConnected(conn *grpc.ClientConn, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for {
		state := conn.GetState()
		switch state {
		case connectivity.Ready:
			return nil
		case connectivity.Idle:
			conn.Connect()
		}
		if !conn.WaitForStateChange(ctx, state) {
			return fmt.Errorf("connection still %v after %v", state, timeout)
		}
	}
}

// exitErr is the error cmd.Wait returned; nil means exit status 0.
func (p *Plugin) exitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.waitErr
}

// Stop sends SIGTERM and waits for the plugin to exit. The test fails if
// it does not exit within StopTimeout (it is then killed) or exits with
// anything but status 0.
func (p *Plugin) Stop() {
	p.t.Helper()
	if !p.Running() {
		p.t.Fatalf("Stop: the plugin is not running (exit: %v)", p.exitErr())
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.t.Errorf("sending SIGTERM to the plugin: %v", err)
	}
	select {
	case <-p.done:
	case <-time.After(StopTimeout):
		p.t.Errorf("the plugin did not exit within %v of SIGTERM; killing it", StopTimeout)
		p.killGroup()
		<-p.done
	}
	if err := p.exitErr(); err != nil {
		p.t.Errorf("the plugin exited with %v after SIGTERM, want status 0", err)
	}
	p.killGroup() // children it may have left behind
}

// Kill sends SIGKILL to the plugin's process group, simulating a crash,
// and waits for the plugin to exit.
func (p *Plugin) Kill() {
	p.t.Helper()
	if !p.Running() {
		p.t.Fatalf("Kill: the plugin is not running (exit: %v)", p.exitErr())
	}
	p.killGroup()
	<-p.done
}

// Restart starts the plugin again with the same options and waits until it
// is ready; a plugin still running is first stopped with Stop. Connections
// and clients from Conn and the client methods keep working across it.
func (p *Plugin) Restart() {
	p.t.Helper()
	if p.Running() {
		p.Stop()
	}
	p.start()
}

// killGroup sends SIGKILL to the plugin's whole process group.
func (p *Plugin) killGroup() {
	if p.cmd == nil {
		return
	}
	err := syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	if err != nil && !errors.Is(err, syscall.ESRCH) {
		p.t.Errorf("killing the plugin: %v", err)
	}
}

// Conn returns a connection to the plugin, the same one on every call. It
// survives Stop, Kill and Restart: it reconnects, with a short back-off,
// once the plugin listens again, and Restart waits until it has. It is
// closed when the test ends.
func (p *Plugin) Conn() *grpc.ClientConn {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.conn == nil {
		conn, err := grpc.NewClient(p.Address(),
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithConnectParams(grpc.ConnectParams{
				Backoff: backoff.Config{
					BaseDelay:  20 * time.Millisecond,
					Multiplier: 1.6,
					Jitter:     0.2,
					MaxDelay:   250 * time.Millisecond,
				},
				MinConnectTimeout: 5 * time.Second,
			}))
		if err != nil {
			p.t.Fatalf("connecting to the plugin: %v", err)
		}
		p.conn = conn
	}
	return p.conn
}

// Identity returns a client of the plugin's Identity service.
func (p *Plugin) Identity() csi.IdentityClient { return csi.NewIdentityClient(p.Conn()) }

// Controller returns a client of the plugin's Controller service.
func (p *Plugin) Controller() csi.ControllerClient { return csi.NewControllerClient(p.Conn()) }

// Node returns a client of the plugin's Node service.
func (p *Plugin) Node() csi.NodeClient { return csi.NewNodeClient(p.Conn()) }

// runLog returns what the plugin logged since its last launch.
func (p *Plugin) runLog() string {
	data, err := os.ReadFile(p.LogPath)
	if err != nil || int64(len(data)) < p.logStart {
		return ""
	}
	return string(data[p.logStart:])
}

// LogTail returns the end of the plugin's log, for failure messages.
func (p *Plugin) LogTail() string {
	data, err := os.ReadFile(p.LogPath)
	if err != nil {
		return fmt.Sprintf("(no plugin log: %v)", err)
	}
	if len(data) > logTailBytes {
		data = data[len(data)-logTailBytes:]
		if i := strings.IndexByte(string(data), '\n'); i >= 0 {
			data = data[i+1:]
		}
		return "--- plugin log (end) ---\n" + string(data)
	}
	return "--- plugin log ---\n" + string(data)
}

// cleanup kills a plugin still running, closes the connection, and shows
// the log if the test failed.
func (p *Plugin) cleanup() {
	if p.Running() {
		p.killGroup()
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			p.t.Errorf("the plugin (pid %d) did not die after SIGKILL", p.cmd.Process.Pid)
		}
	}
	p.mu.Lock()
	if p.conn != nil {
		_ = p.conn.Close()
		p.conn = nil
	}
	p.mu.Unlock()
	if p.t.Failed() {
		p.t.Logf("plugin log %s:\n%s", p.LogPath, p.LogTail())
	}
}
