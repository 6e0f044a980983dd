package volume

import (
	"fmt"
	"path/filepath"

	"github.com/localdisk-csi/localdisk/driver/pool"
	"github.com/localdisk-csi/localdisk/driver/volume/stagemark"
)

// Protected fails with ErrInvalid when a CO path (canonical) lies in what
// localdisk keeps for itself: the state directory, a PATH pool's disk, a
// ROOT pool's root itself or its data directory (<root>/localdisk: marker,
// volumes, trash), or a mounted MOUNT disk. A staging or target path there
// would mount one volume into another or into the plugin's bookkeeping. (A
// ROOT pool's root may be the Mesos agent's work dir, where Mesos keeps its
// CSI mount points: only the root itself and the data directory are refused.)
func (m *Manager) Protected(path string) error {
	kept := make([]stagemark.Kept, 0, len(m.order))
	for _, p := range m.order {
		k := stagemark.Kept{Pool: p.Name}
		switch p.Kind {
		case pool.Root:
			k.Root = p.Dir
			k.Dirs = append(k.Dirs, filepath.Join(p.Dir, dataDir))
		case pool.Path:
			k.Dirs = append(k.Dirs, p.Dir)
		}
		for _, d := range p.Disks {
			if !d.IsDevice() {
				k.Dirs = append(k.Dirs, d.Path)
			}
		}
		kept = append(kept, k)
	}
	if err := m.marks.Protected(path, kept); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return nil
}
