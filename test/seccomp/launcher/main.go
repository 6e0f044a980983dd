// Command launcher runs a program under the seccomp filter of package
// test/seccomp: the new mount API and quotactl_fd(2) fail with the given
// errno, everything else is allowed.
//
//	launcher -errno ENOSYS|EPERM -- PROGRAM [ARG...]
//
// It locks its thread, sets PR_SET_NO_NEW_PRIVS, installs the filter on
// every thread, checks that each denied call now fails with the errno, and
// execs PROGRAM (looked up in PATH if it has no slash) with the launcher's
// environment. The process ID, process group and parent-death signal stay
// the launcher's. It exits with status 125 when it cannot do so.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"syscall"

	"github.com/localdisk-csi/localdisk/test/seccomp"
)

func main() {
	fs := flag.NewFlagSet("launcher", flag.ContinueOnError)
	errnoName := fs.String("errno", "", "the errno of the denied calls: ENOSYS or EPERM (or any errno name or number)")
	noPrj := fs.Bool("no-generic-prjquota", false, "also make quotactl(2) with a generic command on PRJQUOTA fail with EINVAL, as kernels before 4.1 do")
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: launcher -errno ENOSYS|EPERM [-no-generic-prjquota] -- PROGRAM [ARG...]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(os.Args[1:]); err != nil {
		os.Exit(2)
	}
	if *errnoName == "" || fs.NArg() == 0 {
		fs.Usage()
		os.Exit(2)
	}
	if err := run(*errnoName, *noPrj, fs.Args()); err != nil {
		fmt.Fprintf(os.Stderr, "seccomp launcher: %v\n", err)
		os.Exit(125)
	}
}

func run(errnoName string, noPrj bool, argv []string) error {
	errno, err := seccomp.ParseErrno(errnoName)
	if err != nil {
		return err
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return err
	}
	// The filter is per thread (TSYNC copies it to every thread), and
	// execve replaces the process from this one.
	runtime.LockOSThread()
	if err := seccomp.InstallWith(errno, noPrj); err != nil {
		return err
	}
	if err := seccomp.Check(errno); err != nil {
		return fmt.Errorf("the filter is installed but does not filter: %w", err)
	}
	if err := syscall.Exec(path, argv, os.Environ()); err != nil {
		return fmt.Errorf("exec %s: %w", path, err)
	}
	return nil
}
