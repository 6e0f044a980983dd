package mounter

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
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

// bindLegacy binds what srcfd (an O_PATH or ordinary descriptor) shows onto
// target with mount(2). Both ends are named as /proc/self/fd/N of handles
// already open, so no path is resolved twice: the target is opened
// O_PATH|O_NOFOLLOW below its parent, and a symlink there is refused. A
// read-only bind is remounted read-only at once; if that fails, the bind is
// detached again and nothing stays mounted.
func bindLegacy(srcfd int, target string, ro bool) error {
	parent, err := unix.Open(filepath.Dir(target), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open the parent of %s: %w", target, err)
	}
	defer unix.Close(parent)
	base := filepath.Base(target)
	tfd, err := openPath(parent, base)
	if err != nil {
		return fmt.Errorf("open %s: %w", target, err)
	}
	err = unix.Mount(fdPath(srcfd), fdPath(tfd), "", unix.MS_BIND, "")
	unix.Close(tfd)
	if err != nil {
		return fmt.Errorf("mount at %s: %w", target, err)
	}
	if !ro {
		return nil
	}
	if err := remountReadOnly(srcfd, parent, base); err != nil {
		return fmt.Errorf("make mount at %s read-only: %w", target, err)
	}
	return nil
}

// remountReadOnly makes the bind just made at base (below the open parent)
// read-only, keeping its other per-mount flags (a remount replaces them
// all), or detaches it when that cannot be done.
func remountReadOnly(srcfd, parent int, base string) error {
	// The mount point cannot be renamed or removed while mounted, so this
	// lookup finds the new mount's root (the topmost mount there).
	mfd, err := openPath(parent, base)
	if err != nil {
		return err // nothing found to detach either
	}
	defer unix.Close(mfd)
	var ss, ms unix.Stat_t
	if err := unix.Fstat(srcfd, &ss); err != nil {
		return err
	}
	if err := unix.Fstat(mfd, &ms); err != nil {
		return err
	}
	if ss.Dev != ms.Dev || ss.Ino != ms.Ino {
		// Not ours (a mount raced onto the same place): left alone.
		return fmt.Errorf("the mount at %s is not the bind just made", base)
	}
	var sfs unix.Statfs_t
	err = unix.Fstatfs(mfd, &sfs)
	if err == nil {
		err = remount(fdPath(mfd), uintptr(unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY)|keptFlags(sfs.Flags))
	}
	if err != nil {
		if uerr := unix.Unmount(fdPath(mfd), unix.MNT_DETACH); uerr != nil {
			return fmt.Errorf("%w (and detaching the bind: %v)", err, uerr)
		}
		return err
	}
	return nil
}

// remount is mount(2) for the read-only remount; tests make it fail.
var remount = func(target string, flags uintptr) error { return unix.Mount("", target, "", flags, "") }

// keptFlags are the per-mount flags of a statfs f_flags that a bind
// remount must pass again to keep them.
func keptFlags(f int64) uintptr {
	var out uintptr
	for st, ms := range map[int64]uintptr{
		unix.ST_NOSUID: unix.MS_NOSUID, unix.ST_NODEV: unix.MS_NODEV, unix.ST_NOEXEC: unix.MS_NOEXEC,
		unix.ST_NOATIME: unix.MS_NOATIME, unix.ST_NODIRATIME: unix.MS_NODIRATIME, unix.ST_RELATIME: unix.MS_RELATIME,
	} {
		if f&st != 0 {
			out |= ms
		}
	}
	return out
}

// openPath opens name below dirfd as an O_PATH handle without following a
// symlink there, and refuses a symlink (a mount through it would follow it).
func openPath(dirfd int, name string) (int, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK {
		unix.Close(fd)
		return -1, fmt.Errorf("%s is a symlink: %w", name, unix.ELOOP)
	}
	return fd, nil
}

func fdPath(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }
