package cluster

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const (
	// ArtifactsEnv names a directory where the test keeps the logs of the
	// components it started (for CI artifacts or debugging).
	ArtifactsEnv = "LOCALDISK_E2E_ARTIFACTS"
	// stopTimeout is how long a process gets to exit after SIGTERM.
	stopTimeout = 15 * time.Second
	// logTail is how much of a process's log a failed test shows.
	logTail = 8 << 10
)

// Process is a component started by the test (etcd, kube-apiserver, ...).
type Process struct {
	Name string
	Log  string // file holding its standard output and error
	cmd  *exec.Cmd
	done chan struct{} // closed when it has exited and err is set
	err  error
}

// StartProcess starts bin with args in its own process group, its output
// going to dir/<name>.log, and registers a cleanup that stops it by PID
// (SIGTERM to its process group, then SIGKILL) and shows the end of its log
// if the test failed. env is added to the test's environment.
func StartProcess(t *testing.T, dir, name string, env []string, bin string, args ...string) *Process {
	t.Helper()
	p := &Process{Name: name, Log: dir + "/" + name + ".log", done: make(chan struct{})}
	f, err := os.OpenFile(p.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	fmt.Fprintf(f, "=== %s %s %s\n", time.Now().Format(time.RFC3339Nano), bin, strings.Join(args, " "))
	p.cmd = exec.Command(bin, args...)
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	// Its own group, so that stopping it reaches its children; and killed
	// with the test binary if that dies first.
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	err = p.cmd.Start()
	_ = f.Close()
	if err != nil {
		t.Fatalf("starting %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.Stop(t) })
	return p
}

// Pid is the process's ID (and its process group's).
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has exited, and how.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.err
	default:
		return false, nil
	}
}

// Stop sends SIGTERM to the process group, then SIGKILL if it is still
// there after stopTimeout, and waits for the process.
func (p *Process) Stop(t *testing.T) {
	pid := p.cmd.Process.Pid
	if done, _ := p.Exited(); !done {
		signalGroup(t, pid, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(stopTimeout):
			t.Logf("%s (pid %d) did not exit within %v of SIGTERM; killing it", p.Name, pid, stopTimeout)
			signalGroup(t, pid, syscall.SIGKILL)
			<-p.done
		}
	}
	// Anything it left in its group.
	if err := syscall.Kill(-pid, syscall.SIGKILL); err != nil && !errors.Is(err, syscall.ESRCH) {
		t.Errorf("killing what is left of %s's process group: %v", p.Name, err)
	}
	if t.Failed() {
		t.Logf("%s log %s:\n%s", p.Name, p.Log, p.Tail())
	}
	if dir := os.Getenv(ArtifactsEnv); dir != "" {
		if data, err := os.ReadFile(p.Log); err != nil {
			t.Errorf("keeping the log of %s: %v", p.Name, err)
		} else if err := os.WriteFile(filepath.Join(dir, p.Name+".log"), data, 0o644); err != nil {
			t.Errorf("keeping the log of %s: %v", p.Name, err)
		}
	}
}

func signalGroup(t *testing.T, pid int, sig syscall.Signal) {
	if err := syscall.Kill(-pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		t.Errorf("sending %v to process group %d: %v", sig, pid, err)
	}
}

// Tail returns the end of the process's log.
func (p *Process) Tail() string {
	data, err := os.ReadFile(p.Log)
	if err != nil {
		return err.Error()
	}
	if len(data) > logTail {
		data = data[len(data)-logTail:]
	}
	return string(data)
}

// CheckRunning fails the test if the process has exited.
func (p *Process) CheckRunning(t *testing.T) {
	t.Helper()
	if done, err := p.Exited(); done {
		t.Fatalf("%s exited: %v\n%s", p.Name, err, p.Tail())
	}
}
