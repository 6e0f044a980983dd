// Package mounter is localdisk's thin layer over mount(2): binds that never
// follow a symlink, made with open_tree(2)+move_mount(2) where the kernel has
// them (Linux 5.12 and later, with mount_setattr(2)) and with mount(2) on
// /proc/self/fd handles elsewhere (see bind.go); unmounts that never follow a
// symlink; and a snapshot of /proc/self/mountinfo to answer "what is mounted
// here, and is it volume V".
//
// Paths given here come from the CO (staging and target paths) or from the
// pools file; volume directories are passed as open directory handles, so a
// volume ID is never turned into a path.
package mounter

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
	"k8s.io/mount-utils"
	utilexec "k8s.io/utils/exec"
)

// Source identifies what a mount shows: a filesystem (major:minor) and the
// directory of that filesystem at the mount's root. Two mounts with one
// Source show the same directory.
type Source struct {
	Major, Minor int
	Root         string
}

// Within reports whether the mount source s shows dir or a directory below it.
func (s Source) Within(dir Source) bool {
	return s.Major == dir.Major && s.Minor == dir.Minor &&
		(s.Root == dir.Root || strings.HasPrefix(s.Root, strings.TrimSuffix(dir.Root, "/")+"/"))
}

// SourceOf is the Source of a mountinfo entry.
func SourceOf(e *mountinfo.Info) Source {
	return Source{Major: e.Major, Minor: e.Minor, Root: e.Root}
}

// ReadOnly reports whether the mount itself is read-only.
func ReadOnly(e *mountinfo.Info) bool {
	return slices.Contains(strings.Split(e.Options, ","), "ro")
}

// Table is a snapshot of the mount table, in mount order.
type Table []*mountinfo.Info

// ReadTable reads /proc/self/mountinfo.
func ReadTable() (Table, error) {
	t, err := mountinfo.GetMounts(nil)
	if err != nil {
		return nil, fmt.Errorf("read mountinfo: %w", err)
	}
	return t, nil
}

// At is the topmost mount whose mount point is exactly path (canonical), or nil.
func (t Table) At(path string) *mountinfo.Info {
	for i := len(t) - 1; i >= 0; i-- {
		if t[i].Mountpoint == path {
			return t[i]
		}
	}
	return nil
}

// Locate is the Source of the directory at path (canonical): the filesystem
// of the mount containing it and the directory's path inside that filesystem.
func (t Table) Locate(path string) (Source, error) {
	best := t.Containing(path)
	if best == nil {
		return Source{}, fmt.Errorf("no mount contains %s", path)
	}
	rel := strings.TrimPrefix(strings.TrimPrefix(path, best.Mountpoint), "/")
	root := best.Root
	if rel != "" {
		root = strings.TrimSuffix(root, "/") + "/" + rel
	}
	return Source{Major: best.Major, Minor: best.Minor, Root: root}, nil
}

// Containing is the topmost mount whose mount point is path (canonical)
// or one of its parents: the mount that holds path. nil for a table
// without /.
func (t Table) Containing(path string) *mountinfo.Info {
	var best *mountinfo.Info
	for _, e := range t {
		if within(path, e.Mountpoint) && (best == nil || len(e.Mountpoint) >= len(best.Mountpoint)) {
			best = e
		}
	}
	return best
}

// Uses lists the mounts that show the directory at path (canonical, located
// as src) or a directory below it, leaving out the mounts that contain path
// itself: the binds made of a volume.
func (t Table) Uses(path string, src Source) []*mountinfo.Info {
	var out []*mountinfo.Info
	for _, e := range t {
		if SourceOf(e).Within(src) && !within(path, e.Mountpoint) {
			out = append(out, e)
		}
	}
	return out
}

func within(p, dir string) bool {
	return p == dir || dir == "/" || strings.HasPrefix(p, dir+"/")
}

// Corrupted reports an error of a mount whose filesystem stopped answering
// (ENOTCONN, ESTALE, EIO, ...), as k8s.io/mount-utils classifies them: such a
// path can still be unmounted.
func Corrupted(err error) bool { return mount.IsCorruptedMnt(err) }

// Canonical resolves the symlinks of path's parent directories (which must
// exist), leaving its last element alone, so it can be compared with mount
// points in the table. The path must be absolute. A parent that is a
// corrupted mount is taken as it is, so that it can still be unmounted.
func Canonical(path string) (string, error) {
	if !filepath.IsAbs(path) {
		return "", fmt.Errorf("path %q is not absolute", path)
	}
	clean := filepath.Clean(path)
	if clean == "/" {
		return "", errors.New("path / cannot be used")
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(clean))
	if Corrupted(err) {
		return clean, nil
	}
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, filepath.Base(clean)), nil
}

// MaxStack bounds how many mounts stacked at one path UnmountAll removes.
const MaxStack = 16

// UnmountAll removes every mount stacked at path (umount2 until the kernel
// says nothing is mounted there: EINVAL, or ENOENT when path is gone), at
// most MaxStack of them, never following a symlink. It fails if a mount
// stays (busy): nothing is ever removed through a mount still there.
func UnmountAll(path string) error {
	for range MaxStack {
		err := unix.Unmount(path, unix.UMOUNT_NOFOLLOW)
		switch {
		case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOENT):
			return nil
		case err != nil:
			return fmt.Errorf("unmount %s: %w", path, err)
		}
	}
	return fmt.Errorf("%s still has mounts after %d unmounts", path, MaxStack)
}

// FormatAndMount mounts a device disk's filesystem at target, making one of
// fsType first only when the device is blank: k8s.io/mount-utils'
// SafeFormatAndMount never formats a device that has a filesystem or a
// partition table.
func FormatAndMount(dev, target, fsType string, mkfsOptions []string) error {
	m := &mount.SafeFormatAndMount{Interface: mount.New(""), Exec: utilexec.New()}
	return m.FormatAndMountSensitiveWithFormatOptions(dev, target, fsType, nil, nil, mkfsOptions)
}
