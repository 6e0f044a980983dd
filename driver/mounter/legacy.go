package mounter

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"sync"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// The mount(2) path (Legacy). A read-only bind cannot be made read-only
// before it is attached, and a remount changes one mount only: the copies
// that propagation made when the bind was attached (the host's copy of a
// target under a Bidirectional kubelet dir, for one) would stay writable.
// So a read-only bind is prepared on a scratch directory of the plugin's
// own (below the 0700 state dir): bound there, remounted read-only there,
// and only then bound onto the target. A bind copies the read-only flag,
// so the target and every copy propagated from it are read-only from the
// start; the scratch mount is detached at once (its detach propagates like
// its attach did), and a crash's leftovers are detached by SetScratch.

var scratch struct {
	mu  sync.Mutex
	dir string
}

// SetScratch names the directory, made 0700 if missing, below which
// read-only binds are prepared on the mount(2) path, and detaches and
// removes whatever a crash left there. Call it at start, before any bind.
func SetScratch(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("scratch directory for binds: %w", err)
	}
	infos, err := mountinfo.GetMounts(mountinfo.PrefixFilter(dir))
	if err != nil {
		return fmt.Errorf("read mountinfo: %w", err)
	}
	sort.Slice(infos, func(i, j int) bool { return len(infos[i].Mountpoint) > len(infos[j].Mountpoint) })
	for _, m := range infos {
		if m.Mountpoint != dir {
			if err := unix.Unmount(m.Mountpoint, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW); err != nil && !errors.Is(err, unix.EINVAL) {
				return fmt.Errorf("detach %s, left by a crash: %w", m.Mountpoint, err)
			}
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries { // empty scratch directories only: never a walk
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("scratch directory %s: %w", dir, err)
		}
	}
	scratch.mu.Lock()
	scratch.dir = dir
	scratch.mu.Unlock()
	return nil
}

// bindLegacy binds what srcfd (an O_PATH or ordinary descriptor) shows onto
// target with mount(2), read-only if ro (through a read-only scratch bind).
func bindLegacy(srcfd int, target string, ro bool) error {
	if !ro {
		return bindOnto(srcfd, target)
	}
	err := readOnlyClone(srcfd, func(rofd int) error { return bindOnto(rofd, target) })
	if err != nil {
		return fmt.Errorf("read-only bind at %s: %w", target, err)
	}
	return nil
}

// bindOnto binds what srcfd shows onto target. Both ends are named as
// /proc/self/fd/N of handles already open, so no path is resolved twice:
// the target is opened O_PATH|O_NOFOLLOW below its parent, and a symlink
// there is refused.
func bindOnto(srcfd int, target string) error {
	parent, err := unix.Open(filepath.Dir(target), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open the parent of %s: %w", target, err)
	}
	defer unix.Close(parent)
	tfd, err := openPath(parent, filepath.Base(target))
	if err != nil {
		return fmt.Errorf("open %s: %w", target, err)
	}
	defer unix.Close(tfd)
	if err := unix.Mount(fdPath(srcfd), fdPath(tfd), "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("mount at %s: %w", target, err)
	}
	return nil
}

// readOnlyClone binds what srcfd shows on a new scratch directory, makes
// that mount read-only (keeping its other per-mount flags: a remount
// replaces them all), calls fn with an O_PATH handle of it, and detaches
// and removes the scratch again whatever happens.
func readOnlyClone(srcfd int, fn func(rofd int) error) error {
	scratch.mu.Lock()
	dir := scratch.dir
	scratch.mu.Unlock()
	if dir == "" {
		return errors.New("no scratch directory for read-only binds (SetScratch)")
	}
	s, err := os.MkdirTemp(dir, "ro-")
	if err != nil {
		return fmt.Errorf("scratch: %w", err)
	}
	defer os.Remove(s)
	if err := bindOnto(srcfd, s); err != nil {
		return err
	}
	defer unix.Unmount(s, unix.MNT_DETACH|unix.UMOUNT_NOFOLLOW)
	// Nothing else mounts in the plugin's own scratch: this finds the bind.
	mfd, err := openPath(unix.AT_FDCWD, s)
	if err != nil {
		return err
	}
	defer unix.Close(mfd)
	var ss, ms unix.Stat_t
	var sfs unix.Statfs_t
	if err := unix.Fstat(srcfd, &ss); err != nil {
		return err
	}
	if err := unix.Fstat(mfd, &ms); err != nil {
		return err
	}
	if ss.Dev != ms.Dev || ss.Ino != ms.Ino {
		return fmt.Errorf("the mount at %s is not the bind just made", s)
	}
	if err := unix.Fstatfs(mfd, &sfs); err != nil {
		return err
	}
	if err := remount(fdPath(mfd), uintptr(unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY)|keptFlags(sfs.Flags)); err != nil {
		return fmt.Errorf("remount read-only: %w", err)
	}
	return fn(mfd)
}

// remount is mount(2) for the read-only remount; tests make it fail.
var remount = func(target string, flags uintptr) error { return unix.Mount("", target, "", flags, "") }

// stNoSymfollow is ST_NOSYMFOLLOW (Linux 5.10), which x/sys/unix lacks.
const stNoSymfollow = 0x2000

// keptFlags are the per-mount flags of a statfs f_flags that a bind
// remount must pass again to keep them. With no atime flag, strictatime is
// asked for: kernels before 3.17 would otherwise fall back to relatime.
func keptFlags(f int64) uintptr {
	var out uintptr
	for st, ms := range map[int64]uintptr{
		unix.ST_NOSUID: unix.MS_NOSUID, unix.ST_NODEV: unix.MS_NODEV, unix.ST_NOEXEC: unix.MS_NOEXEC,
		unix.ST_NOATIME: unix.MS_NOATIME, unix.ST_NODIRATIME: unix.MS_NODIRATIME, unix.ST_RELATIME: unix.MS_RELATIME,
		stNoSymfollow: unix.MS_NOSYMFOLLOW,
	} {
		if f&st != 0 {
			out |= ms
		}
	}
	if f&(unix.ST_NOATIME|unix.ST_RELATIME) == 0 {
		out |= unix.MS_STRICTATIME
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
