// Package stagemark keeps the staging marks of whole disks in the state
// directory (<state-dir>/staged/<disk ID>) and says which paths localdisk
// keeps for itself, where no CO path may lie (Protected), and whether a
// mount still uses a directory (Busy). It knows the state directory only:
// the Manager (driver/volume) tells it which volumes are whole disks and
// what its pools keep.
package stagemark

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/mounter"
)

// stagedDir holds the staging marks: <state-dir>/staged/<disk ID>.
const stagedDir = layout.StagedDir

// Marks are the staging marks of the state directory, and the staging
// records of ROOT and PATH volumes (Records).
type Marks struct {
	Dir     string   // the state directory, canonical
	Root    *os.Root // the state directory
	Staging *Records // nil: none (tests of the marks alone)
}

// Open serves the marks of the state directory root (dir, canonical) and
// reads its staging records of this boot.
func Open(dir string, root *os.Root) (Marks, error) {
	boot, err := BootID()
	if err != nil {
		return Marks{}, err
	}
	recs, err := OpenRecords(root, boot)
	return Marks{Dir: dir, Root: root, Staging: recs}, err
}

// name is the mark of the disk of volume id, relative to the state dir.
// It is named by the disk, not the volume: every volume ID a disk has (its
// unclaimed ID, each claim's) shares it, so that a wipe of the disk sees a
// staging made under any of them.
func name(id string) string { return path.Join(stagedDir, layout.DiskOf(id)) }

// Path is the canonical path of the mark of volume id's disk.
func (s Marks) Path(id string) string { return filepath.Join(s.Dir, name(id)) }

// Open opens the staging mark of volume id's disk, making it if missing:
// an empty directory of its own in the state directory. A mark that is not
// a directory (a symlink planted in the state dir) is refused.
func (s Marks) Open(id string) (*os.File, error) {
	for _, n := range []string{stagedDir, name(id)} {
		if err := s.Root.Mkdir(n, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		if fi, err := s.Root.Lstat(n); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("staging mark %s is not a directory: %v", filepath.Join(s.Dir, n), err)
		}
	}
	return s.Root.Open(name(id))
}

// Sources are what a staging mount of the mark of volume id's disk may
// show: the mark, and the mark as the kernel shows it once its directory
// was removed (root suffixed "//deleted"), so that such a staging can still
// be unstaged.
func (s Marks) Sources(t mounter.Table, id string) ([]mounter.Source, error) {
	src, err := t.Locate(s.Path(id))
	if err != nil {
		return nil, err
	}
	gone := src
	gone.Root += "//deleted"
	return []mounter.Source{src, gone}, nil
}

// InUse names where volume id is staged: a staging record of a ROOT or
// PATH volume, a mount of the disk's staging mark (the disk is staged; a
// removed mark's "//deleted" root is below it too) or a mount below the
// mark (propagated from below a staging path).
func (s Marks) InUse(t mounter.Table, id string) (string, bool) {
	if s.Staging != nil {
		if p, ok := s.Staging.Staged(id); ok {
			return p, true
		}
	}
	return Busy(t, s.Path(id))
}

// Remove removes an unused staging mark, with what a CO may have put in
// its staging path; a missing one is no error.
func (s Marks) Remove(id string) error {
	err := s.Root.RemoveAll(name(id))
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// Kept is what a pool keeps for itself: the root of a ROOT pool (Root,
// refused itself; empty for other kinds) and the directories nothing may
// lie in (Dirs).
type Kept struct {
	Pool string
	Root string
	Dirs []string
}

// Protected fails when a CO path (canonical) is the root of a ROOT pool or
// lies in the state directory or in a directory a pool keeps (kept, in
// configuration order).
func (s Marks) Protected(path string, kept []Kept) error {
	dirs := []string{s.Dir}
	for _, k := range kept {
		if k.Root != "" && path == k.Root {
			return fmt.Errorf("%s is the root of pool %q", path, k.Pool)
		}
		dirs = append(dirs, k.Dirs...)
	}
	for _, d := range dirs {
		if path == d || strings.HasPrefix(path, d+"/") {
			return fmt.Errorf("%s is inside %s, which localdisk manages", path, d)
		}
	}
	return nil
}

// Busy reports a mount that shows the directory at path (canonical) or
// something below it, or that is mounted inside it: removing the directory
// would then delete data through that mount.
func Busy(t mounter.Table, path string) (string, bool) {
	if src, err := t.Locate(path); err == nil {
		if uses := t.Uses(path, src); len(uses) > 0 {
			return uses[0].Mountpoint, true
		}
	}
	for _, e := range t {
		if strings.HasPrefix(e.Mountpoint, path+"/") {
			return e.Mountpoint, true
		}
	}
	return "", false
}
