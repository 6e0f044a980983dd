package load

import (
	"bufio"
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
	"time"
)

// BinEnv names a prebuilt localdisk binary that Build returns instead of
// building one (the same variable as the tests' testutil.BinEnv).
const BinEnv = "LOCALDISK_BIN"

// Build builds ./cmd/localdisk of this module into dir/localdisk with
// `go build` (or returns $LOCALDISK_BIN).
func Build(ctx context.Context, dir string) (string, error) {
	if bin := os.Getenv(BinEnv); bin != "" {
		return filepath.Abs(bin)
	}
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("not inside the localdisk module (go env GOMOD is empty)")
	}
	bin := filepath.Join(dir, "localdisk")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/localdisk")
	cmd.Dir = filepath.Dir(mod)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0") // as make build: static
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/localdisk: %w\n%s", err, out)
	}
	return bin, nil
}

// Process is a plugin process started by Start.
type Process struct {
	cmd     *exec.Cmd
	done    chan struct{}
	waitErr error
	LogPath string
}

// Start runs bin with args in its own process group (killed with it if this
// process dies), its output appended to logPath.
func Start(bin string, args []string, logPath string) (*Process, error) {
	log, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer log.Close()
	fmt.Fprintf(log, "=== %s bench: starting %s %s\n", time.Now().Format(time.RFC3339Nano), bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &Process{cmd: cmd, done: make(chan struct{}), LogPath: logPath}
	go func() { p.waitErr = cmd.Wait(); close(p.done) }()
	return p, nil
}

// Pid is the process ID.
func (p *Process) Pid() int { return p.cmd.Process.Pid }

// Exited reports whether the process has exited.
func (p *Process) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// WaitReady polls Probe every poll until it answers OK, the process exits
// or ctx ends.
func (p *Process) WaitReady(ctx context.Context, endpoint string, poll time.Duration) error {
	sock := strings.TrimPrefix(endpoint, "unix://")
	for {
		if p.Exited() {
			return fmt.Errorf("the plugin exited while starting (%v):\n%s", p.waitErr, p.LogTail(4096))
		}
		if _, err := os.Stat(sock); err == nil && Probe(endpoint, time.Second) == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the plugin did not answer Probe: %w\n%s", ctx.Err(), p.LogTail(4096))
		case <-time.After(poll):
		}
	}
}

// Stop sends SIGTERM and waits up to timeout, then SIGKILLs the group. It
// returns the exit error, if the process did not exit with status 0.
func (p *Process) Stop(timeout time.Duration) error {
	if !p.Exited() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(timeout):
			_ = syscall.Kill(-p.Pid(), syscall.SIGKILL)
			<-p.done
			return fmt.Errorf("killed: no exit within %v of SIGTERM", timeout)
		}
	}
	_ = syscall.Kill(-p.Pid(), syscall.SIGKILL) // children left behind, if any
	return p.waitErr
}

// LogTail is the end of the process's log.
func (p *Process) LogTail(n int64) string {
	f, err := os.Open(p.LogPath)
	if err != nil {
		return ""
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return ""
	}
	buf := make([]byte, min(n, fi.Size()))
	_, _ = f.ReadAt(buf, fi.Size()-int64(len(buf)))
	return string(buf)
}

// clockTick is USER_HZ, the unit of /proc/PID/stat times: 100 on every
// Linux architecture Go supports (it is part of the kernel's ABI).
const clockTick = 100

// CPUTime is the user+system CPU time of every thread of pid so far.
func CPUTime(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	return parseStatCPU(data)
}

func parseStatCPU(data []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc/PID/stat")
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 { // f[0] is field 3 (state); utime is field 14, stime 15
		return 0, errors.New("short /proc/PID/stat")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(ut+st) * time.Second / clockTick, nil
}

// Memory returns VmRSS and VmHWM (peak RSS) of pid, in bytes.
func Memory(pid int) (rss, hwm int64, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k != "VmRSS" && k != "VmHWM" {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("/proc/%d/status %s: %w", pid, k, err)
		}
		if k == "VmRSS" {
			rss = kb << 10
		} else {
			hwm = kb << 10
		}
	}
	return rss, hwm, sc.Err()
}

// ResetPeak resets VmHWM of pid to its current RSS (writes 5 to
// /proc/PID/clear_refs; needs the right to ptrace it, e.g. root).
func ResetPeak(pid int) error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", pid), []byte("5"), 0)
}

// WaitIdle waits until process pid has used less than 1% of a CPU over a
// whole window (its start-up work done), or until timeout, and returns how
// long it waited and the CPU time it used meanwhile.
func WaitIdle(ctx context.Context, pid int, window, timeout time.Duration) (waited, used time.Duration, err error) {
	start := time.Now()
	first, err := CPUTime(pid)
	if err != nil {
		return 0, 0, err
	}
	last := first
	for time.Since(start) < timeout {
		select {
		case <-ctx.Done():
			return time.Since(start), last - first, ctx.Err()
		case <-time.After(window):
		}
		now, err := CPUTime(pid)
		if err != nil {
			return time.Since(start), last - first, err
		}
		busy := now - last
		last = now
		if busy < window/100 {
			return time.Since(start), last - first, nil
		}
	}
	return time.Since(start), last - first, fmt.Errorf("process %d still busy after %v", pid, timeout)
}
