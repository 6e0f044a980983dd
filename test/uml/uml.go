// Package uml runs a program inside a user-mode Linux (UML) kernel, for
// tests that need kernel features the host lacks: the hosts localdisk is
// tested on have no XFS quota and no quota format v2, which Debian's
// user-mode-linux kernel has (XFS quota built in, quota_v2 as a module).
//
// The UML kernel runs as an ordinary process. It sees the host's files
// through hostfs (root=/), so the program is a host-built binary run at
// its host path, and its output and exit status come back as files in a
// host directory. Each Disk is a sparse image file, formatted on the host,
// seen inside as /dev/ubda, /dev/ubdb, ... and mounted by the init script
// before the program starts; the program finds the mount points in
// UML_DISK_<NAME>. Nothing is mounted on the host.
package uml

import (
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

	"golang.org/x/sys/unix"
)

// Disk is a block device of the UML machine.
type Disk struct {
	// Name ([a-z][a-z0-9]*) names the mount point, <work dir>/mnt/<Name>,
	// given to the program as UML_DISK_<NAME> (and its device as
	// UML_DISK_<NAME>_DEVICE).
	Name string
	// Size of the sparse image, in bytes.
	Size int64
	// Format is the host command that formats the image, run with the
	// image's path appended, e.g. {"mkfs.xfs", "-q", "-f"}; nil leaves it
	// blank (then set NoMount).
	Format []string
	// FSType and MountOptions are mount's -t and -o; empty: none.
	FSType, MountOptions string
	// NoMount leaves the disk unmounted, for the program to use.
	NoMount bool
}

// Options say what Run boots and runs.
type Options struct {
	// Binary is the host path of the program to run inside UML.
	Binary string
	// Args and Env (KEY=VALUE) are the program's arguments and extra
	// environment; it starts with a clean environment otherwise.
	Args, Env []string
	// Disks are attached in order as ubd0 (/dev/ubda), ubd1, ...
	Disks []Disk
	// Modules are kernel modules to load with insmod before mounting,
	// as paths relative to ModulesDir/<kernel version>, e.g.
	// "kernel/fs/quota/quota_tree.ko".
	Modules []string
	// Mem is the UML machine's memory; default "768M".
	Mem string
	// Timeout bounds the whole run, boot to halt; default 3 minutes. UML
	// is killed when it is exceeded.
	Timeout time.Duration
}

// Result is what a run produced.
type Result struct {
	Output   string // the program's standard output and error
	ExitCode int    // the program's exit status
	Kernel   string // the UML kernel's version (uname -r)
	Console  string // the kernel's console: boot messages and script errors
}

// Run boots a UML machine with opts's disks, runs opts.Binary in it and
// returns its output and exit status. The test fails (Fatal) when the run
// itself fails: a tool is missing (see Require; the test is skipped when
// not root and not in CI), a disk cannot be made, a setup step inside UML
// fails, or the timeout is exceeded; the console is logged then. UML and
// every process it started are killed on any failure, and the work
// directory (images included) is removed when the test ends.
func Run(t testing.TB, opts Options) Result {
	t.Helper()
	tools := []string{"insmod"} // kmod's; used only when there are Modules
	if len(opts.Modules) == 0 {
		tools = nil
	}
	for _, d := range opts.Disks {
		if len(d.Format) > 0 {
			tools = append(tools, d.Format[0])
		}
	}
	paths := Require(t, tools...)
	insmod := ""
	if len(opts.Modules) > 0 {
		insmod = paths[1]
	}
	res, err := run(t.TempDir(), opts, paths[0], insmod)
	if err != nil {
		if res.Console != "" {
			t.Logf("UML console:\n%s", res.Console)
		}
		if res.Output != "" {
			t.Logf("program output:\n%s", res.Output)
		}
		t.Fatalf("uml.Run: %v", err)
	}
	return res
}

// run does Run's work in dir, an empty directory that the caller removes.
// insmod is the path of insmod (used only when there are Modules).
func run(dir string, opts Options, linux, insmod string) (Result, error) {
	if opts.Binary == "" || !filepath.IsAbs(opts.Binary) {
		return Result{}, fmt.Errorf("Binary must be an absolute path, got %q", opts.Binary)
	}
	if opts.Mem == "" {
		opts.Mem = "768M"
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 3 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), opts.Timeout)
	defer cancel()

	args := []string{"mem=" + opts.Mem}
	mounts := make([]string, len(opts.Disks))
	seen := map[string]bool{}
	for i, d := range opts.Disks {
		if !diskName.MatchString(d.Name) || seen[d.Name] {
			return Result{}, fmt.Errorf("disk %d: bad or repeated name %q", i, d.Name)
		}
		seen[d.Name] = true
		img := filepath.Join(dir, d.Name+".img")
		if err := makeImage(ctx, img, d); err != nil {
			return Result{}, fmt.Errorf("disk %s: %w", d.Name, err)
		}
		mounts[i] = filepath.Join(dir, "mnt", d.Name)
		args = append(args, fmt.Sprintf("ubd%d=%s", i, img))
	}
	init := filepath.Join(dir, "init.sh")
	if err := os.WriteFile(init, []byte(script(opts, dir, mounts, insmod)), 0o755); err != nil {
		return Result{}, err
	}
	umlDir := filepath.Join(dir, "uml")
	if err := os.Mkdir(umlDir, 0o700); err != nil {
		return Result{}, err
	}
	args = append(args, "rootfstype=hostfs", "rootflags=/", "rw", "init="+init,
		"con=null", "con0=fd:0,fd:1", "umid=localdisk-test", "uml_dir="+umlDir)

	console, err := os.Create(filepath.Join(dir, "console"))
	if err != nil {
		return Result{}, err
	}
	defer console.Close()
	runErr := boot(ctx, linux, args, console)

	var res Result
	if b, err := os.ReadFile(console.Name()); err == nil {
		res.Console = string(b)
	}
	if b, err := os.ReadFile(filepath.Join(dir, outputFile)); err == nil {
		res.Output = string(b)
	}
	if b, err := os.ReadFile(filepath.Join(dir, kernelFile)); err == nil {
		res.Kernel = strings.TrimSpace(string(b))
	}
	if ctx.Err() != nil {
		return res, fmt.Errorf("UML did not halt within %v; killed it", opts.Timeout)
	}
	status, err := os.ReadFile(filepath.Join(dir, statusFile))
	if err != nil {
		return res, fmt.Errorf("UML wrote no status (%v; UML: %v)", err, runErr)
	}
	s := strings.TrimSpace(string(status))
	code, ok := strings.CutPrefix(s, "exit ")
	if !ok {
		return res, fmt.Errorf("inside UML: %s", s)
	}
	if res.ExitCode, err = strconv.Atoi(code); err != nil {
		return res, fmt.Errorf("bad status %q", s)
	}
	return res, nil
}

// makeImage creates the sparse image of d at path and formats it.
func makeImage(ctx context.Context, path string, d Disk) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	err = f.Truncate(d.Size)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil || len(d.Format) == 0 {
		return err
	}
	tool, err := lookTool(d.Format[0])
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, tool, append(append([]string{}, d.Format[1:]...), path)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(d.Format, " "), err, out)
	}
	return nil
}

// boot runs the UML kernel with args, its console on console, until it
// halts or ctx is done. UML runs in a process group of its own, with
// SIGKILL as its parent-death signal; when it ends, or ctx is done, the
// whole group is killed while the kernel process is a zombie not yet
// reaped, so the group ID cannot have been reused by then.
func boot(ctx context.Context, linux string, args []string, console *os.File) error {
	cmd := exec.Command(linux, args...)
	cmd.Stdout, cmd.Stderr = console, console
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", linux, err)
	}
	pid := cmd.Process.Pid
	exited := make(chan error, 1)
	go func() {
		// Wait for the exit without reaping (WNOWAIT).
		var info unix.Siginfo
		for {
			err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
			if !errors.Is(err, unix.EINTR) {
				exited <- err
				return
			}
		}
	}()
	select {
	case <-exited:
	case <-ctx.Done():
		_ = unix.Kill(-pid, unix.SIGKILL)
		<-exited
	}
	// Sweep what is left of the group (UML's helper processes), reap the
	// kernel process, and wait for the killed helpers to be gone: a
	// process with a large address space takes a moment to exit.
	_ = unix.Kill(-pid, unix.SIGKILL)
	err := cmd.Wait()
	for i := 0; i < 1000 && unix.Kill(-pid, 0) == nil; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	return err
}
