package volume

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/mounter"
)

// stagedDir holds the staging marks: <state-dir>/staged/<volume ID>.
const stagedDir = layout.StagedDir

// WholeDisk reports a MOUNT volume on a disk given by path: the operator
// mounted its filesystem at the disk's path, and the volume is that mount's
// root. Such a volume is staged with its mark (StageMark), not with a second
// mount of that root: kubelet refuses to unstage a staging path whose mount
// root is also mounted outside its own directory (GetDeviceMountRefs), and
// the operator's mount at the disk's path would be such a reference, so the
// volume could never be unstaged and its PVC never deleted. Its publish
// binds the disk's root itself.
func (v *Volume) WholeDisk() bool { return !v.Pool.Kind.Directory() && !v.Device() }

// markPath is where the staging mark of volume id lives.
func (m *Manager) markPath(id string) string { return filepath.Join(m.stateDir, stagedDir, id) }

// StageMark opens the staging mark of a WholeDisk volume, making it if
// missing: an empty directory of its own in the state directory, bound at
// the staging path. The mount table then says that the volume is staged
// there (StageSource), through restarts of the plugin, and a reboot unstages
// it as it does any other volume. The mark lives as long as the volume:
// removed by Delete only, once nothing mounts it.
func (m *Manager) StageMark(v *Volume) (*os.File, error) {
	if !v.WholeDisk() {
		return nil, fmt.Errorf("volume %s has no staging mark: only a MOUNT disk given by path has", v.ID)
	}
	if err := m.stateRoot.Mkdir(stagedDir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	name := path.Join(stagedDir, v.ID)
	if err := m.stateRoot.Mkdir(name, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	f, err := m.stateRoot.Open(name)
	if err != nil {
		return nil, err
	}
	if fi, err := f.Stat(); err != nil || !fi.IsDir() {
		f.Close()
		return nil, fmt.Errorf("staging mark %s is not a directory", m.markPath(v.ID))
	}
	return f, nil
}

// StageSource is what a staging mount of the volume shows: its mark for a
// WholeDisk volume, else what any mount of it shows (Source).
func (m *Manager) StageSource(t mounter.Table, v *Volume) (mounter.Source, error) {
	if v.WholeDisk() {
		return t.Locate(m.markPath(v.ID))
	}
	return m.Source(t, v, false)
}

// markInUse names a mount of the volume's staging mark: the volume is staged.
func (m *Manager) markInUse(t mounter.Table, id string) (string, bool) {
	src, err := t.Locate(m.markPath(id))
	if err != nil {
		return "", false
	}
	if uses := t.Uses(m.markPath(id), src); len(uses) > 0 {
		return uses[0].Mountpoint, true
	}
	return "", false
}

// removeMark removes an unused staging mark (Delete, after checkUnused),
// with what a CO may have put in its staging path.
func (m *Manager) removeMark(id string) error {
	err := m.stateRoot.RemoveAll(path.Join(stagedDir, id))
	if err == nil || errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}
