// Package seccomp builds and installs the seccomp filter of the test
// launcher (test/seccomp/launcher): it makes the new mount API and
// quotactl_fd(2) fail with one errno (ENOSYS: a kernel without them; EPERM:
// a container runtime's profile that denies them) and allows everything
// else, so that the real plugin can be tested on its mount(2) and
// quotactl(2) fallbacks on a kernel that has the new calls.
//
// The filter is classic BPF, installed with seccomp(2) and
// SECCOMP_FILTER_FLAG_TSYNC after PR_SET_NO_NEW_PRIVS, without cgo. It is
// inherited across execve(2) and fork(2): the plugin and every program it
// runs (mount, mkfs, ...) are filtered alike.
package seccomp

import (
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Call is a system call the filter denies.
type Call struct {
	Name string
	Nr   uint32
}

// Denied are the system calls the filter makes fail: the new mount API
// (Linux 5.2, mount_setattr 5.12, open_tree_attr 6.15) and quotactl_fd(2)
// (5.14). Their numbers are the same in the x86-64 and the generic (arm64)
// tables.
var Denied = []Call{
	{"open_tree", unix.SYS_OPEN_TREE},
	{"move_mount", unix.SYS_MOVE_MOUNT},
	{"fsopen", unix.SYS_FSOPEN},
	{"fsconfig", unix.SYS_FSCONFIG},
	{"fsmount", unix.SYS_FSMOUNT},
	{"fspick", unix.SYS_FSPICK},
	{"mount_setattr", unix.SYS_MOUNT_SETATTR},
	{"quotactl_fd", unix.SYS_QUOTACTL_FD},
	{"open_tree_attr", unix.SYS_OPEN_TREE_ATTR},
}

// errArch is returned where the filter does not know the architecture's
// AUDIT_ARCH: a filter that checked the wrong one would kill every process.
var errArch = fmt.Errorf("seccomp filter: GOARCH %s is not supported (amd64 and arm64 are)", runtime.GOARCH)

// ParseErrno reads an errno name (ENOSYS, eperm, ...) or number.
func ParseErrno(s string) (syscall.Errno, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n <= 0 || n > maxErrno {
			return 0, fmt.Errorf("errno %d out of range 1..%d", n, maxErrno)
		}
		return syscall.Errno(n), nil
	}
	name := strings.ToUpper(s)
	for n := 1; n <= maxErrno; n++ {
		if unix.ErrnoName(syscall.Errno(n)) == name {
			return syscall.Errno(n), nil
		}
	}
	return 0, fmt.Errorf("unknown errno %q (want e.g. ENOSYS or EPERM)", s)
}

// maxErrno is the largest errno (MAX_ERRNO): SECCOMP_RET_DATA could hold
// more, but a system call returns only -1..-4095 as errors.
const maxErrno = 4095

// Offsets in struct seccomp_data.
const (
	offNr   = 0
	offArch = 4
)

func stmt(code uint16, k uint32) unix.SockFilter { return unix.SockFilter{Code: code, K: k} }

func jump(code uint16, k uint32, jt, jf uint8) unix.SockFilter {
	return unix.SockFilter{Code: code, Jt: jt, Jf: jf, K: k}
}

// Filter returns the program: a system call of another architecture kills
// the process; one in Denied (or, on x86-64, any x32 call) returns errno;
// every other is allowed.
func Filter(errno syscall.Errno) ([]unix.SockFilter, error) { return FilterWith(errno, false) }

// genericPrjQuota is the mask and value of a quotactl(2) command word
// QCMD(subcmd, PRJQUOTA) with a generic subcmd (0x8000xx): the commands
// that kernels before Linux 4.1 refuse with EINVAL for project quotas.
const (
	genericCmdMask  = 0xffff00ff
	genericPrjQuota = 0x80000002
	offArg0         = 16 // seccomp_data.args[0], low 32 bits (little-endian)
)

// FilterWith is Filter, and with noGenericPrjQuota also makes quotactl(2)
// with a generic command on PRJQUOTA fail with EINVAL, as kernels before
// 4.1 (RHEL and CentOS 7's 3.10) do; XFS's own commands (Q_X*) still work.
func FilterWith(errno syscall.Errno, noGenericPrjQuota bool) ([]unix.SockFilter, error) {
	if auditArch == 0 {
		return nil, errArch
	}
	if errno <= 0 || errno > maxErrno {
		return nil, fmt.Errorf("errno %d out of range 1..%d", int(errno), maxErrno)
	}
	const (
		ld  = unix.BPF_LD | unix.BPF_W | unix.BPF_ABS
		jeq = unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K
		jge = unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K
		and = unix.BPF_ALU | unix.BPF_AND | unix.BPF_K
		ret = unix.BPF_RET | unix.BPF_K
	)
	checks := len(Denied)
	if x32Bit != 0 {
		checks++
	}
	if noGenericPrjQuota {
		checks += 4
	}
	// Layout: 0 load arch, 1 arch?, 2 load nr, 3.. checks, then
	// allow, deny, kill, einval.
	allow := 3 + checks
	deny, kill, einval := allow+1, allow+2, allow+3
	prog := []unix.SockFilter{
		stmt(ld, offArch),
		jump(jeq, auditArch, 0, uint8(kill-2)),
		stmt(ld, offNr),
	}
	for _, c := range Denied {
		i := len(prog)
		prog = append(prog, jump(jeq, c.Nr, uint8(deny-i-1), 0))
	}
	if x32Bit != 0 {
		i := len(prog)
		prog = append(prog, jump(jge, x32Bit, uint8(deny-i-1), 0))
	}
	if noGenericPrjQuota {
		i := len(prog)
		prog = append(prog,
			jump(jeq, unix.SYS_QUOTACTL, 0, uint8(allow-i-1)),
			stmt(ld, offArg0),
			stmt(and, genericCmdMask),
			jump(jeq, genericPrjQuota, uint8(einval-i-4), 0),
		)
	}
	prog = append(prog,
		stmt(ret, unix.SECCOMP_RET_ALLOW),
		stmt(ret, unix.SECCOMP_RET_ERRNO|uint32(errno)&unix.SECCOMP_RET_DATA),
		stmt(ret, unix.SECCOMP_RET_KILL_PROCESS),
		stmt(ret, unix.SECCOMP_RET_ERRNO|uint32(unix.EINVAL)),
	)
	return prog, nil
}

// Install sets PR_SET_NO_NEW_PRIVS and installs Filter(errno) on every
// thread of the process (SECCOMP_FILTER_FLAG_TSYNC). Call it with the
// goroutine locked to its thread (runtime.LockOSThread) when the thread
// then calls execve(2).
func Install(errno syscall.Errno) error { return InstallWith(errno, false) }

// InstallWith is Install of FilterWith(errno, noGenericPrjQuota).
func InstallWith(errno syscall.Errno, noGenericPrjQuota bool) error {
	prog, err := FilterWith(errno, noGenericPrjQuota)
	if err != nil {
		return err
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("prctl(PR_SET_NO_NEW_PRIVS): %w", err)
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	r, _, e := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		unix.SECCOMP_FILTER_FLAG_TSYNC, uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	if e != 0 {
		return fmt.Errorf("seccomp(SECCOMP_SET_MODE_FILTER, TSYNC): %w", e)
	}
	if r != 0 {
		return fmt.Errorf("seccomp(SECCOMP_SET_MODE_FILTER, TSYNC): thread %d could not be synchronised", r)
	}
	return nil
}

// Check makes each denied call with arguments it would refuse anyway (a
// bad descriptor) and reports any that does not fail with errno: a filter
// that was installed but does not filter.
func Check(errno syscall.Errno) error {
	var errs []error
	for _, c := range Denied {
		_, _, e := unix.Syscall6(uintptr(c.Nr), ^uintptr(0), 0, 0, 0, 0, 0)
		if e != errno {
			errs = append(errs, fmt.Errorf("%s (%d) failed with %v (%d), want %v",
				c.Name, c.Nr, e, int(e), unix.ErrnoName(errno)))
		}
	}
	return errors.Join(errs...)
}
