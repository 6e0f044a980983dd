package hostile

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/localdisk-csi/localdisk/test/testutil"
)

// TestUnpublish_Busy: a target or staging mount that cannot be removed (a
// file open in it, a process's working directory in it, a mount below it,
// a busy mount stacked on it) makes unpublish or unstage fail; the target
// is not removed, no data is deleted through it, and once released the
// retry succeeds.
func TestUnpublish_Busy(t *testing.T) {
	e := newEnv(t)
	for _, kind := range []string{"root", "mount"} {
		for _, c := range []struct {
			name string
			hold func(t *testing.T, dir string) (release func())
		}{
			{"open file", holdOpenFile},
			{"working directory", holdCwd},
			{"mount below", holdSubmount},
			{"busy mount stacked on top", holdStacked},
		} {
			t.Run(kind+"/"+c.name, func(t *testing.T) {
				e := e.sub(t)
				v := e.published("busy", kind)
				e.Must(os.WriteFile(filepath.Join(v.target, "precious"), []byte("precious"), 0o600), "write")
				for _, step := range []struct {
					what string
					path string
					call func() error
				}{
					{"NodeUnpublishVolume", v.target, func() error { return e.Unpublish(v.id, v.target) }},
					{"NodeUnstageVolume", v.staging, func() error { return e.Unstage(v.id, v.staging) }},
				} {
					release := c.hold(t, step.path)
					err := step.call()
					if err == nil {
						t.Errorf("%s succeeded while %s was held busy (%s)", step.what, step.path, c.name)
					} else if status.Code(err) == codes.OK {
						t.Errorf("%s: %v", step.what, err)
					}
					if _, err := os.Lstat(step.path); err != nil {
						t.Errorf("%s removed the busy path: %v", step.what, err)
					}
					if data, err := os.ReadFile(filepath.Join(e.dataDir(kind, v.id), "precious")); err != nil || string(data) != "precious" {
						t.Errorf("DATA LOSS after a failed %s: %q %v", step.what, data, err)
					}
					release()
					e.Must(step.call(), step.what+" once released")
				}
				if m := testutil.Mounts(t, filepath.Dir(v.target)); len(m) != 0 {
					t.Errorf("left mounted: %q", m)
				}
				e.Must(e.Delete(v.id), "delete")
			})
		}
	}
	e.CheckConverged()
}

func holdOpenFile(t *testing.T, dir string) func() {
	f, err := os.Open(filepath.Join(dir, "precious"))
	if errors.Is(err, fs.ErrNotExist) { // a whole disk's staging path shows its empty mark
		f, err = os.Open(dir)
	}
	if err != nil {
		t.Fatal(err)
	}
	return func() { f.Close() }
}

func holdCwd(t *testing.T, dir string) func() {
	cmd := exec.Command("sleep", "600")
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	released := false
	release := func() {
		if !released {
			released = true
			cmd.Process.Kill()
			cmd.Wait()
		}
	}
	t.Cleanup(release)
	return release
}

func holdSubmount(t *testing.T, dir string) func() {
	sub := filepath.Join(dir, "sub")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", sub, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(sub, unix.MNT_DETACH) })
	return func() {
		if err := unix.Unmount(sub, 0); err != nil {
			t.Errorf("unmounting the submount: %v", err)
		}
		os.Remove(sub)
	}
}

func holdStacked(t *testing.T, dir string) func() {
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	f, err := os.Create(filepath.Join(dir, "held"))
	if err != nil {
		t.Fatal(err)
	}
	return func() { f.Close() }
}
