package seccomp_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/localdisk-csi/localdisk/test/seccomp"
	"github.com/localdisk-csi/localdisk/test/testutil"
)

// helperEnv makes the test binary, re-executed under the launcher, make
// the system calls and print their results instead of running tests.
const helperEnv = "LOCALDISK_SECCOMP_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		os.Exit(helper())
	}
	testutil.Main(m)
}

// result is "ok" or the errno's name.
func result(err error) string {
	var e syscall.Errno
	switch {
	case err == nil:
		return "ok"
	case errors.As(err, &e):
		return unix.ErrnoName(e)
	}
	return err.Error()
}

func errnoResult(e syscall.Errno) string {
	if e == 0 {
		return "ok"
	}
	return unix.ErrnoName(e)
}

// helper makes each denied call (open_tree for real, the others on a bad
// descriptor) and a few allowed ones, and prints name=result lines.
func helper() int {
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	p := func(name, res string) { fmt.Fprintf(out, "%s=%s\n", name, res) }

	fd, err := unix.OpenTree(unix.AT_FDCWD, "/", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err == nil {
		unix.Close(fd)
	}
	p("open_tree", result(err))
	p("move_mount", result(unix.MoveMount(-1, "", -1, "", unix.MOVE_MOUNT_F_EMPTY_PATH)))
	p("mount_setattr", result(unix.MountSetattr(-1, "", unix.AT_EMPTY_PATH, &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY})))
	for _, c := range []struct {
		name string
		nr   uintptr
	}{{"fsopen", unix.SYS_FSOPEN}, {"fsconfig", unix.SYS_FSCONFIG}, {"fsmount", unix.SYS_FSMOUNT},
		{"fspick", unix.SYS_FSPICK}, {"open_tree_attr", unix.SYS_OPEN_TREE_ATTR}} {
		_, _, e := unix.Syscall6(c.nr, ^uintptr(0), 0, 0, 0, 0, 0)
		p(c.name, errnoResult(e))
	}
	// quotactl_fd(-1, QCMD(Q_GETINFO, PRJQUOTA)): EBADF where it exists.
	const qGetInfo, prjQuota = 0x800005, 2
	_, _, e := unix.Syscall6(unix.SYS_QUOTACTL_FD, uintptr(^uint32(0)), qGetInfo<<8|prjQuota, 0, 0, 0, 0)
	p("quotactl_fd", errnoResult(e))

	// Allowed: quotactl(2) on a device that does not exist, mount(2) on a
	// mount point that does not exist (as root), files, a child process.
	special, _ := unix.BytePtrFromString("/nonexistent-localdisk-device")
	_, _, e = unix.Syscall6(unix.SYS_QUOTACTL, qGetInfo<<8|prjQuota, uintptr(unsafe.Pointer(special)), 0, 0, 0, 0)
	p("quotactl", errnoResult(e))
	const qXGetQuota = 'X'<<8 + 3 // XFS's own command: never filtered
	_, _, e = unix.Syscall6(unix.SYS_QUOTACTL, qXGetQuota<<8|prjQuota, uintptr(unsafe.Pointer(special)), 0, 0, 0, 0)
	p("quotactl_xfs", errnoResult(e))
	const qGetQuotaUsr = 0x800007 << 8 // a generic command on user quotas: never filtered
	_, _, e = unix.Syscall6(unix.SYS_QUOTACTL, qGetQuotaUsr, uintptr(unsafe.Pointer(special)), 0, 0, 0, 0)
	p("quotactl_usr", errnoResult(e))
	if os.Geteuid() == 0 {
		p("mount", result(unix.Mount("none", "/nonexistent-localdisk-mountpoint", "tmpfs", 0, "")))
	}
	p("getpid", result(func() error {
		if unix.Getpid() != os.Getpid() {
			return errors.New("getpid differs")
		}
		return nil
	}()))
	p("file", result(func() error {
		f, err := os.CreateTemp("", "seccomp-helper-")
		if err != nil {
			return err
		}
		defer os.Remove(f.Name())
		defer f.Close()
		_, err = f.WriteString("data")
		return err
	}()))
	status, _ := os.ReadFile("/proc/self/status")
	p("self", statusFields(string(status)))
	child, err := exec.Command("cat", "/proc/self/status").Output()
	if err != nil {
		p("child", err.Error())
	} else {
		p("child", statusFields(string(child)))
	}
	return 0
}

// statusFields returns the seccomp and no_new_privs fields of a
// /proc/PID/status as "NoNewPrivs:N,Seccomp:N" (their order in the file).
func statusFields(status string) string {
	var f []string
	for line := range strings.Lines(status) {
		k, v, _ := strings.Cut(strings.TrimSpace(line), ":")
		if k == "Seccomp" || k == "NoNewPrivs" {
			f = append(f, k+":"+strings.TrimSpace(v))
		}
	}
	return strings.Join(f, ",")
}

// runHelper runs the test binary in helper mode, under the launcher with
// errno unless it is empty, and parses its output.
func runHelper(t *testing.T, errno string, flags ...string) map[string]string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	name, args := self, []string{}
	if errno != "" {
		name, args = testutil.BuildLauncher(t), append(append([]string{"-errno", errno}, flags...), "--", self)
	}
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), helperEnv+"=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %q: %v\n%s", name, args, err, out)
	}
	got := map[string]string{}
	for line := range strings.Lines(string(out)) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
			got[k] = v
		}
	}
	t.Logf("errno %q: %v", errno, got)
	return got
}

// TestLauncher runs the helper under the launcher with ENOSYS and EPERM:
// every denied call fails with that errno, the allowed ones behave as
// without a filter, and the filter is inherited by the helper's children.
func TestLauncher(t *testing.T) {
	plain := runHelper(t, "")
	if plain["quotactl_fd"] != "EBADF" || plain["open_tree"] == "ENOSYS" {
		t.Fatalf("this kernel lacks quotactl_fd or open_tree (%v): the filter cannot be told from the kernel", plain)
	}
	if os.Geteuid() == 0 && plain["open_tree"] != "ok" {
		t.Errorf("without the filter, open_tree as root: %s, want ok", plain["open_tree"])
	}
	for _, errno := range []string{"ENOSYS", "EPERM"} {
		t.Run(errno, func(t *testing.T) {
			got := runHelper(t, errno)
			for _, c := range seccomp.Denied {
				if got[c.Name] != errno {
					t.Errorf("%s under the filter: %q, want %s", c.Name, got[c.Name], errno)
				}
			}
			for _, k := range []string{"quotactl", "mount", "getpid", "file"} {
				if got[k] != plain[k] {
					t.Errorf("%s (allowed) under the filter: %q, without: %q", k, got[k], plain[k])
				}
			}
			if got["quotactl"] != "ENOENT" {
				t.Errorf("quotactl(2) on a missing device under the filter: %q, want ENOENT", got["quotactl"])
			}
			for _, k := range []string{"self", "child"} {
				if got[k] != "NoNewPrivs:1,Seccomp:2" {
					t.Errorf("%s's status under the filter: %q, want NoNewPrivs:1,Seccomp:2", k, got[k])
				}
			}
		})
	}
}

// TestLauncher_Refuses checks that the launcher runs nothing when it cannot
// filter as asked.
func TestLauncher_Refuses(t *testing.T) {
	launcher := testutil.BuildLauncher(t)
	marker := filepath.Join(t.TempDir(), "ran")
	for _, c := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"-errno", "EBOGUS", "--", "touch", marker}, 125, `unknown errno "EBOGUS"`},
		{[]string{"-errno", "0", "--", "touch", marker}, 125, "out of range"},
		{[]string{"-errno", "ENOSYS", "--", "/nonexistent/program"}, 125, "no such file"},
		{[]string{"--", "touch", marker}, 2, "usage"},
		{[]string{"-errno", "ENOSYS"}, 2, "usage"},
	} {
		out, err := exec.Command(launcher, c.args...).CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != c.code || !strings.Contains(string(out), c.msg) {
			t.Errorf("launcher %q: %v, %q; want exit %d and %q", c.args, err, out, c.code, c.msg)
		}
	}
	if _, err := os.Stat(marker); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the program ran: %v", err)
	}
}

func TestFilter(t *testing.T) {
	for _, s := range []string{"ENOSYS", "enosys", "38"} {
		if e, err := seccomp.ParseErrno(s); err != nil || e != unix.ENOSYS {
			t.Errorf("ParseErrno(%q) = %v, %v; want ENOSYS", s, e, err)
		}
	}
	if e, err := seccomp.ParseErrno("EPERM"); err != nil || e != unix.EPERM {
		t.Errorf("ParseErrno(EPERM) = %v, %v", e, err)
	}
	for _, e := range []syscall.Errno{0, 4096} {
		if _, err := seccomp.Filter(e); err == nil {
			t.Errorf("Filter(%d) accepted", int(e))
		}
	}
	prog, err := seccomp.Filter(unix.ENOSYS)
	if err != nil {
		t.Fatal(err)
	}
	// A classic BPF program jumps only forwards, and ends in returns.
	for i, ins := range prog {
		if ins.Code&0x07 == unix.BPF_JMP && (i+1+int(ins.Jt) >= len(prog) || i+1+int(ins.Jf) >= len(prog)) {
			t.Errorf("instruction %d %+v jumps past the end (%d instructions)", i, ins, len(prog))
		}
	}
	if last := prog[len(prog)-1]; last.Code != unix.BPF_RET|unix.BPF_K {
		t.Errorf("the program ends with %+v, not a return", last)
	}
}

// TestLauncher_NoGenericPrjQuota: with -no-generic-prjquota, quotactl(2)
// with a generic command on project quotas fails with EINVAL, as on a
// kernel before 4.1, while XFS's own commands and generic commands on user
// quotas reach the kernel (ENOENT: no such device).
func TestLauncher_NoGenericPrjQuota(t *testing.T) {
	plain := runHelper(t, "ENOSYS")
	old := runHelper(t, "ENOSYS", "-no-generic-prjquota")
	for name, want := range map[string][2]string{
		"quotactl":     {"ENOENT", "EINVAL"},
		"quotactl_xfs": {"ENOENT", "ENOENT"},
		"quotactl_usr": {"ENOENT", "ENOENT"},
		"open_tree":    {"ENOSYS", "ENOSYS"},
		"file":         {"ok", "ok"},
	} {
		if plain[name] != want[0] || old[name] != want[1] {
			t.Errorf("%s: %s without the option and %s with it, want %s and %s", name, plain[name], old[name], want[0], want[1])
		}
	}
}
