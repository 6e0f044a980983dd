package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"

	"golang.org/x/sys/unix"

	"github.com/localdisk-csi/localdisk/driver/copytree"
	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/pool"
	"github.com/localdisk-csi/localdisk/driver/quota"
	"github.com/localdisk-csi/localdisk/driver/volume"
)

// method is how pool p copies now, decided once it could be (the pool
// healthy), with why it cannot.
func (m *Manager) method(p *volume.Pool) Decision {
	m.mu.Lock()
	meth, ok := m.methods[p.Name]
	m.mu.Unlock()
	if ok {
		return Decision{Method: meth}
	}
	if !p.Kind.Directory() {
		return Decide(p.Spec, "", nil)
	}
	root, err := p.Open()
	if err != nil {
		return Decision{Reason: err}
	}
	defer root.Close()
	dir, err := root.Open(".")
	if err != nil {
		return Decision{Reason: err}
	}
	defer dir.Close()
	d := Decide(p.Spec, p.Enforcement(), dir)
	if d.Method != None {
		m.mu.Lock()
		m.methods[p.Name] = d.Method
		m.mu.Unlock()
	}
	return d
}

// MethodOf is pool p's method as `localdisk status` reports it: "none"
// with the reason when it has none.
func (m *Manager) MethodOf(p *volume.Pool) (Method, error) {
	d := m.method(p)
	return d.Method, d.Reason
}

// openDir opens the directory name inside root, never through a symlink.
func openDir(root *os.Root, name string) (*os.File, error) {
	fi, err := root.Lstat(name)
	if err != nil {
		return nil, err
	}
	if !fi.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", name)
	}
	return root.OpenFile(name, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW, 0)
}

// ensureSnapshotsDir makes <pool>/localdisk/snapshots (mode 0700).
func ensureSnapshotsDir(root *os.Root) error {
	if err := root.Mkdir(layout.SnapshotsDir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return nil
}

// isSubvolume reports whether name inside root is a btrfs subvolume.
func isSubvolume(root *os.Root, name string) bool {
	f, err := openDir(root, name)
	if err != nil {
		return false
	}
	defer f.Close()
	ok, _ := quota.IsSubvolume(f)
	return ok
}

// removeData removes dir/id inside root with everything in it: a
// subvolume is deleted as such, a directory removed (never through a
// symlink or a mount: os.Root). A missing one is not an error.
func removeData(root *os.Root, dir, id string) error {
	name := path.Join(dir, id)
	if _, err := root.Lstat(name); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if isSubvolume(root, name) {
		parent, err := openDir(root, dir)
		if err != nil {
			return err
		}
		defer parent.Close()
		if err := quota.DeleteSubvolume(parent, id); err != nil && !errors.Is(err, quota.ErrNotFound) {
			return err
		}
		return nil
	}
	return root.RemoveAll(name)
}

// removeVolumeDir removes a new volume's directory that a fill left (its
// record never written): its data, then the empty directory or
// subvolume and its project's limit (capacity.Pool.RemoveOrphan).
func removeVolumeDir(root *os.Root, p *volume.Pool, id string) error {
	name := path.Join(layout.VolumesDir, id)
	if isSubvolume(root, name) {
		return removeData(root, layout.VolumesDir, id)
	}
	entries, err := fs.ReadDir(root.FS(), name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := root.RemoveAll(path.Join(name, e.Name())); err != nil {
			return err
		}
	}
	return p.RemoveOrphan(root, id)
}

// copyTree copies the tree of src into dst (both inside root) with m.
func copyTree(ctx context.Context, root *os.Root, src, dst string, m Method) error {
	s, err := openDir(root, src)
	if err != nil {
		return err
	}
	defer s.Close()
	d, err := openDir(root, dst)
	if err != nil {
		return err
	}
	defer d.Close()
	how := copytree.Full
	if m == Reflink {
		how = copytree.Reflink
	}
	_, err = copytree.Copy(ctx, s, d, how)
	return spaceErr(err)
}

// spaceErr maps a copy that does not fit: over the target's quota is
// pool.ErrOutOfRange (the data is larger than the capacity), a full
// filesystem pool.ErrInsufficientCapacity.
func spaceErr(err error) error {
	switch {
	case err == nil || !errors.Is(err, copytree.ErrNoSpace) && !errors.Is(err, unix.EDQUOT):
		return err
	case errors.Is(err, unix.EDQUOT):
		return fmt.Errorf("%w: the data does not fit the capacity: %v", pool.ErrOutOfRange, err)
	}
	return fmt.Errorf("%w: %v", pool.ErrInsufficientCapacity, err)
}
