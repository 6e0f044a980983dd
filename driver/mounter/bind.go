package mounter

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"

	"golang.org/x/sys/unix"
)

// Method is how this process makes binds. It is decided once per process
// (Detect) and never changes after.
type Method int

const (
	// MountAPI is open_tree(2)+mount_setattr(2)+move_mount(2) (Linux 5.12):
	// a read-only bind is read-only before it is attached.
	MountAPI Method = iota
	// Legacy is mount(2) with MS_BIND (every kernel), from and onto
	// /proc/self/fd handles opened with O_PATH|O_NOFOLLOW; a read-only bind
	// is a bind, then a remount MS_REMOUNT|MS_BIND|MS_RDONLY, and is
	// detached again if the remount fails.
	Legacy
)

func (m Method) String() string {
	if m == Legacy {
		return "mount(2)"
	}
	return "open_tree(2)"
}

var detected struct {
	once   sync.Once
	method Method
	why    error // why Legacy was chosen; nil for MountAPI
}

// Detect reports the method this process uses for binds and, for Legacy,
// why: the first of open_tree(2), mount_setattr(2) and move_mount(2) that
// failed. It probes the kernel once (a detached clone of / made read-only,
// then closed: it never appears in the mount table). ENOSYS is a kernel
// without the call; EPERM is usually a seccomp profile that denies it (older
// container runtimes); either way mount(2) serves.
func Detect() (Method, error) {
	detected.once.Do(func() {
		detected.why = probeMountAPI()
		if detected.why != nil {
			detected.method = Legacy
		}
	})
	return detected.method, detected.why
}

func probeMountAPI() error {
	fd, err := unix.OpenTree(unix.AT_FDCWD, "/", unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)
	if err != nil {
		return fmt.Errorf("open_tree: %w", err)
	}
	defer unix.Close(fd)
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, attr); err != nil {
		return fmt.Errorf("mount_setattr: %w", err)
	}
	// A bad descriptor: EBADF where the call exists, nothing is moved.
	err = unix.MoveMount(-1, "", -1, "", unix.MOVE_MOUNT_F_EMPTY_PATH)
	if errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EPERM) {
		return fmt.Errorf("move_mount: %w", err)
	}
	return nil
}

// BindDir mounts a clone of the directory open as dir at target (which
// must exist; a symlink at target is never followed), read-only if ro.
func BindDir(dir *os.File, target string, ro bool) error {
	defer runtime.KeepAlive(dir)
	if m, _ := Detect(); m == Legacy {
		return bindLegacy(int(dir.Fd()), target, ro)
	}
	return bindAPI(int(dir.Fd()), "", unix.AT_EMPTY_PATH, target, ro)
}

// BindPath mounts a clone of the mount or directory (or device node) at src
// onto target; a symlink at src or at target is never followed.
func BindPath(src, target string, ro bool) error {
	if m, _ := Detect(); m == Legacy {
		fd, err := openPath(unix.AT_FDCWD, src)
		if err != nil {
			return fmt.Errorf("open %s to mount at %s: %w", src, target, err)
		}
		defer unix.Close(fd)
		return bindLegacy(fd, target, ro)
	}
	return bindAPI(unix.AT_FDCWD, src, unix.AT_SYMLINK_NOFOLLOW, target, ro)
}

func bindAPI(dirfd int, name string, flags uint, target string, ro bool) error {
	fd, err := unix.OpenTree(dirfd, name, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|flags)
	if err != nil {
		return fmt.Errorf("clone mount for %s: %w", target, err)
	}
	defer unix.Close(fd)
	if ro {
		attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
		if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH, attr); err != nil {
			return fmt.Errorf("make mount for %s read-only: %w", target, err)
		}
	}
	if err := unix.MoveMount(fd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("mount at %s: %w", target, err)
	}
	return nil
}
