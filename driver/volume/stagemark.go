package volume

import (
	"fmt"
	"os"

	"github.com/localdisk-csi/localdisk/driver/mounter"
	"github.com/localdisk-csi/localdisk/driver/volume/stagemark"
)

// StageMark opens the staging mark of a WholeDisk volume's disk, making it
// if missing: an empty directory of its own in the state directory, bound at
// the staging path. The mount table then says that the disk is staged there
// (StageSource), through restarts of the plugin, and a reboot unstages it as
// it does any other volume. The mark lives as long as the disk's volume:
// removed by Delete only, once nothing mounts it. A mark that is not a
// directory (a symlink planted in the state dir) is refused. The marks are
// driver/volume/stagemark's.
func (m *Manager) StageMark(v *Volume) (*os.File, error) {
	if !v.WholeDisk() {
		return nil, fmt.Errorf("volume %s has no staging mark: only a MOUNT disk given by path has", v.ID)
	}
	return m.marks.Open(v.ID)
}

// StageSources are what a staging mount of the volume may show: for a
// WholeDisk volume its mark, and the mark as the kernel shows it once its
// directory was removed (root suffixed "//deleted"), so that such a staging
// can still be unstaged; else what any mount of it shows (Source).
func (m *Manager) StageSources(t mounter.Table, v *Volume) ([]mounter.Source, error) {
	if !v.WholeDisk() {
		src, err := m.Source(t, v, false)
		return []mounter.Source{src}, err
	}
	return m.marks.Sources(t, v.ID)
}

// Staging are the staging records of ROOT and PATH volumes, which are
// staged without a mount (driver/mounts).
func (m *Manager) Staging() *stagemark.Records { return m.marks.Staging }

// removeMark removes an unused staging mark (Delete, after checkUnused
// found nothing mounted at or below it), with what a CO may have put in
// its staging path.
func (m *Manager) removeMark(id string) error { return m.marks.Remove(id) }
