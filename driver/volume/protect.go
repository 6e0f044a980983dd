package volume

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/localdisk-csi/localdisk/driver/mounter"
	"github.com/localdisk-csi/localdisk/driver/pool"
)

// Protected fails with ErrInvalid when a CO path (canonical) lies in what
// localdisk keeps for itself: the state directory, a PATH pool's disk, a
// ROOT pool's root itself or its data directory (<root>/localdisk: marker,
// volumes, trash), or a mounted MOUNT disk. A staging or target path there
// would mount one volume into another or into the plugin's bookkeeping. (A
// ROOT pool's root may be the Mesos agent's work dir, where Mesos keeps its
// CSI mount points: only the root itself and the data directory are refused.)
func (m *Manager) Protected(path string) error {
	dirs := []string{m.stateDir}
	for _, p := range m.order {
		switch p.Kind {
		case pool.Root:
			if path == p.Dir {
				return fmt.Errorf("%w: %s is the root of pool %q", ErrInvalid, path, p.Name)
			}
			dirs = append(dirs, filepath.Join(p.Dir, dataDir))
		case pool.Path:
			dirs = append(dirs, p.Dir)
		}
		for _, d := range p.Disks {
			if !d.IsDevice() {
				dirs = append(dirs, d.Path)
			}
		}
	}
	for _, d := range dirs {
		if path == d || strings.HasPrefix(path, d+"/") {
			return fmt.Errorf("%w: %s is inside %s, which localdisk manages", ErrInvalid, path, d)
		}
	}
	return nil
}

// busy reports a mount that shows the directory at path (canonical) or
// something below it, or that is mounted inside it: removing the directory
// would then delete data through that mount.
func busy(t mounter.Table, path string) (string, bool) {
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
