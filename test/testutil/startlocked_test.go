package testutil

import (
	"errors"
	"os/exec"
	"runtime"
	"sync"
	"syscall"
	"testing"
)

var errMainThread = errors.New("on the main thread")

// The hazard startLocked avoids: a child with Pdeathsig dies when the OS
// thread that started it ends, here a goroutine that returns while locked.
func TestPdeathsig_FollowsTheStartingThread(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	for {
		started := make(chan error, 1)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
			if syscall.Gettid() == syscall.Getpid() {
				started <- errMainThread // the runtime keeps the main thread: try another
				return
			}
			started <- cmd.Start()
		}()
		err := <-started
		if err == errMainThread {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		break
	}
	err := cmd.Wait()
	ee, ok := err.(*exec.ExitError)
	if !ok || !ee.Sys().(syscall.WaitStatus).Signaled() || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("the child of an ended thread: %v, want killed by SIGKILL", err)
	}
}

// A child started by startLocked survives goroutines that end while
// locked to their OS thread (which ends the thread): its Pdeathsig follows
// the thread that started it, which startLocked keeps alive.
func TestStartLocked_ChildOutlivesEndingThreads(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var exitErr error
	done, err := startLocked(cmd, func(err error) { exitErr = err })
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); <-done }()
	var wg sync.WaitGroup
	for range 4 * runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() { defer wg.Done(); runtime.LockOSThread() }() // the thread ends with it
	}
	wg.Wait()
	runtime.Gosched()
	if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
		select {
		case <-done:
			t.Fatalf("the child died when threads ended: %v", exitErr)
		default:
			t.Fatalf("the child is gone: %v", err)
		}
	}
}
