package mounts

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/localdisk-csi/localdisk/driver/mounter"
)

// CheckPath fails with ErrBadPath for a CO path the kernel could never
// take: not absolute, a NUL byte, longer than PATH_MAX or with a name
// longer than NAME_MAX. field names the path in the message.
func CheckPath(p, field string) error {
	if !filepath.IsAbs(p) || strings.IndexByte(p, 0) >= 0 || len(p) >= unix.PathMax {
		return fmt.Errorf("%w: %s must be an absolute path without NUL bytes, shorter than %d bytes", ErrBadPath, field, unix.PathMax)
	}
	for _, name := range strings.Split(p, "/") {
		if len(name) > unix.NAME_MAX {
			return fmt.Errorf("%w: %s has a name longer than %d bytes", ErrBadPath, field, unix.NAME_MAX)
		}
	}
	return nil
}

// canonical checks a CO path and resolves its parents' symlinks; a path
// inside what localdisk manages (pools' data, disks, state) is refused.
func (m *Mounts) canonical(p, field string) (string, error) {
	if err := CheckPath(p, field); err != nil {
		return "", err
	}
	c, err := mounter.Canonical(p)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrBadPath, field, err)
	}
	if err := m.vols.Protected(c); err != nil {
		return "", fmt.Errorf("%w: %s: %v", ErrBadPath, field, err)
	}
	return c, nil
}

// makeDir makes a mount point directory, accepting an existing directory but
// never a symlink or another kind of file.
func makeDir(p string) error {
	if err := os.Mkdir(p, 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create %s: %v", p, err)
	}
	fi, err := os.Lstat(p)
	if err != nil {
		return fmt.Errorf("%v", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("%w: %s exists and is not a directory (%s)", ErrNotADirectory, p, fi.Mode().Type())
	}
	return nil
}

// makeFile makes a block volume's target file, accepting an existing
// regular file but never a symlink or a directory.
func makeFile(p string) error {
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err == nil {
		f.Close()
		return nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("create %s: %v", p, err)
	}
	fi, err := os.Lstat(p)
	if err != nil {
		return fmt.Errorf("%v", err)
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: %s exists and is not a regular file (%s)", ErrNotAFile, p, fi.Mode().Type())
	}
	return nil
}

// removeTarget removes an unmounted target: a directory (only if empty) or
// an empty regular file (a block target) or a symlink, never a file that
// holds data.
func removeTarget(target string) error {
	fi, err := os.Lstat(target)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%v", err)
	}
	if fi.Mode().IsRegular() && fi.Size() > 0 || !fi.IsDir() && !fi.Mode().IsRegular() && fi.Mode().Type() != fs.ModeSymlink {
		return fmt.Errorf("%w: target_path %s is a %v holding data, not what publish made: not removed", ErrTargetHoldsData, target, fi.Mode().Type())
	}
	err = os.Remove(target)
	switch {
	case err == nil || errors.Is(err, fs.ErrNotExist):
		return nil
	case errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST):
		return fmt.Errorf("%w: target_path %s is a directory holding files, not what publish made: not removed", ErrTargetHoldsData, target)
	}
	return fmt.Errorf("remove target_path %s: %v", target, err)
}
