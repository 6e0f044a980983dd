package hostile

import (
	"errors"
	"fmt"
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
// retry succeeds. A ROOT volume is staged without a mount (its staging
// path is a plain directory): its unstage has nothing to unmount, so what
// holds the directory does not make it fail and is left as it is; only a
// mount stacked on the staging path is refused (another's: not unmounted),
// and the volume stays staged until the retry after it is gone.
func TestUnpublish_Busy(t *testing.T) {
	e := newEnv(t)
	for _, kind := range []string{"root", "mount"} {
		for _, c := range []struct {
			name string
			hold func(t *testing.T, dir string) held
		}{
			{"open file", holdOpenFile},
			{"working directory", holdCwd},
			{"mount below", holdSubmount},
			{"busy mount stacked on top", holdStacked},
		} {
			t.Run(kind+"/"+c.name, func(t *testing.T) {
				e := e.sub(t)
				v := e.published("busy", kind)
				t.Cleanup(func() { // on failure too: the next subtest reuses the name
					e.Unpublish(v.id, v.target)
					e.Unstage(v.id, v.staging)
					e.Delete(v.id)
				})
				e.Must(os.WriteFile(filepath.Join(v.target, "precious"), []byte("precious"), 0o600), "write")
				for _, step := range []struct {
					what string
					path string
					call func() error
				}{
					{"NodeUnpublishVolume", v.target, func() error { return e.Unpublish(v.id, v.target) }},
					{"NodeUnstageVolume", v.staging, func() error { return e.Unstage(v.id, v.staging) }},
				} {
					// A ROOT volume's staging path is no mount: only a mount
					// stacked on it stops its unstage.
					unmounted := kind == "root" && step.path == v.staging
					stacked := c.name == "busy mount stacked on top"
					h := c.hold(t, step.path)
					err := step.call()
					switch {
					case unmounted && !stacked:
						if err != nil {
							t.Errorf("%s of a volume staged without a mount, %s held (%s): %v", step.what, step.path, c.name, err)
						}
						if err := h.intact(); err != nil {
							t.Errorf("%s touched what holds %s (%s): %v", step.what, step.path, c.name, err)
						}
					case unmounted: // another's mount on the staging path
						wantCode(t, err, step.what+" under a foreign mount", codes.FailedPrecondition)
						if err := h.intact(); err != nil {
							t.Errorf("%s touched the foreign mount on %s: %v", step.what, step.path, err)
						}
						wantCode(t, e.Delete(v.id), "DeleteVolume after a refused unstage", codes.FailedPrecondition)
					case err == nil:
						t.Errorf("%s succeeded while %s was held busy (%s)", step.what, step.path, c.name)
					case status.Code(err) == codes.OK:
						t.Errorf("%s: %v", step.what, err)
					}
					if _, err := os.Lstat(step.path); err != nil {
						t.Errorf("%s removed the busy path: %v", step.what, err)
					}
					if data, err := os.ReadFile(filepath.Join(e.dataDir(kind, v.id), "precious")); err != nil || string(data) != "precious" {
						t.Errorf("DATA LOSS after %s: %q %v", step.what, data, err)
					}
					h.release()
					if unmounted && stacked { // the CO (or its operator) takes its mount away
						e.Must(unix.Unmount(step.path, 0), "unmount the foreign mount")
					}
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

// held is what holds a directory busy: release lets it go; intact fails
// unless it still holds the directory as it did.
type held struct {
	release func()
	intact  func() error
}

func holdOpenFile(t *testing.T, dir string) held {
	f, err := os.Open(filepath.Join(dir, "precious"))
	if errors.Is(err, fs.ErrNotExist) { // a whole disk's staging path shows its empty mark, a ROOT volume's nothing
		f, err = os.Open(dir)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	opened, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return held{release: func() { f.Close() }, intact: func() error {
		now, err := os.Stat(f.Name())
		if err != nil {
			return err
		}
		if !os.SameFile(now, opened) {
			return fmt.Errorf("%s is no longer the file held open", f.Name())
		}
		return nil
	}}
}

func holdCwd(t *testing.T, dir string) held {
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
	return held{release: release, intact: func() error {
		if err := cmd.Process.Signal(syscall.Signal(0)); err != nil {
			return fmt.Errorf("the process in %s: %v", dir, err)
		}
		cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", cmd.Process.Pid))
		if want, _ := filepath.EvalSymlinks(dir); err != nil || cwd != want {
			return fmt.Errorf("the process's working directory: %q, %v; want %s", cwd, err, dir)
		}
		return nil
	}}
}

func holdSubmount(t *testing.T, dir string) held {
	sub := filepath.Join(dir, "sub")
	if err := os.MkdirAll(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount("tmpfs", sub, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(sub, unix.MNT_DETACH) })
	if err := os.WriteFile(filepath.Join(sub, "held"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	return held{release: func() {
		if err := unix.Unmount(sub, 0); err != nil {
			t.Errorf("unmounting the submount: %v", err)
		}
		os.Remove(sub)
	}, intact: func() error {
		_, err := os.Stat(filepath.Join(sub, "held")) // only on the tmpfs
		return err
	}}
}

func holdStacked(t *testing.T, dir string) held {
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	f, err := os.Create(filepath.Join(dir, "held"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return held{release: func() { f.Close() }, intact: func() error {
		_, err := os.Stat(filepath.Join(dir, "held")) // only on the tmpfs
		return err
	}}
}
