package testutil

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// CrashTimeout bounds how long WaitCrash waits for a plugin to kill itself
// at an armed failpoint after the RPC that reaches it has failed.
const CrashTimeout = 30 * time.Second

// SetEnv replaces the extra environment (PluginOptions.Env) the plugin gets
// from its next Restart on, e.g. to arm or disarm a failpoint
// ("LOCALDISK_FAILPOINT=name@N") between two runs over the same state.
func (p *Plugin) SetEnv(env ...string) { p.opts.Env = env }

// WaitCrash waits until the plugin exits by itself (it killed itself at a
// failpoint) and fails the test unless it died of SIGKILL within
// CrashTimeout.
func (p *Plugin) WaitCrash() {
	p.t.Helper()
	if p.cmd == nil {
		p.t.Fatal("WaitCrash: the plugin was never started")
	}
	select {
	case <-p.done:
	case <-time.After(CrashTimeout):
		p.t.Fatalf("the plugin did not die within %v: its failpoint was not reached", CrashTimeout)
	}
	var ee *exec.ExitError
	if err := p.exitErr(); !errors.As(err, &ee) || !signaledKill(ee) {
		p.t.Fatalf("the plugin exited with %v, want death by SIGKILL at its failpoint", err)
	}
}

func signaledKill(ee *exec.ExitError) bool {
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// Log returns the plugin's whole log (all runs so far).
func (p *Plugin) Log() string {
	data, err := os.ReadFile(p.LogPath)
	if err != nil {
		p.t.Fatalf("reading the plugin log: %v", err)
	}
	return string(data)
}

// StartPluginExpectExit runs the plugin binary bin with opts expecting it to
// refuse to start, and returns what it logged in this run and how it exited.
// The test fails if the plugin answers Probe (it started serving) or is
// still running after StartTimeout; it is then killed.
func StartPluginExpectExit(t testing.TB, bin string, opts PluginOptions) (log string, exit error) {
	t.Helper()
	return runToExit(t, bin, opts, StartTimeout, true)
}

// RunPluginUntilExit runs the plugin binary bin with opts until it exits by
// itself (a failpoint armed in its start-up or its background work), whether
// or not it served meanwhile, and returns what it logged in this run and how
// it exited. The test fails if it still runs after CrashTimeout.
func RunPluginUntilExit(t testing.TB, bin string, opts PluginOptions) (log string, exit error) {
	t.Helper()
	return runToExit(t, bin, opts, CrashTimeout, false)
}

func runToExit(t testing.TB, bin string, opts PluginOptions, timeout time.Duration, refuse bool) (string, error) {
	t.Helper()
	p := &Plugin{t: t, bin: bin, opts: opts, LogPath: opts.Endpoint + ".log"}
	t.Cleanup(p.cleanup)
	var before int64
	if fi, err := os.Stat(p.LogPath); err == nil {
		before = fi.Size()
	}
	p.launch()
	done := p.done
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-done:
			data, _ := os.ReadFile(p.LogPath)
			if int64(len(data)) >= before {
				data = data[before:]
			}
			return string(data), p.exitErr()
		default:
		}
		if refuse {
			if _, err := os.Stat(opts.Endpoint); err == nil && p.probeOnce() == nil {
				t.Errorf("the plugin started serving; it should have refused to start\n%s", p.LogTail())
				p.Kill()
				return "", nil
			}
		}
		if time.Now().After(deadline) {
			t.Errorf("the plugin did not exit within %v", timeout)
			p.Kill()
			return "", nil
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// GrepLog returns the lines of log that contain any of the needles.
func GrepLog(log string, needles ...string) []string {
	var out []string
	for line := range strings.Lines(log) {
		for _, n := range needles {
			if n != "" && strings.Contains(line, n) {
				out = append(out, fmt.Sprintf("%.300s", strings.TrimSpace(line)))
				break
			}
		}
	}
	return out
}
