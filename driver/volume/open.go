package volume

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"

	"github.com/localdisk-csi/localdisk/driver/disk"
)

// OpenDir opens the volume's directory for mounting, after checking that its
// pool is healthy (the marker is the recorded one, or the MOUNT disk is
// mounted). The directory is reached through the pool root with os.Root, so
// nothing planted inside a pool can redirect it.
func (m *Manager) OpenDir(v *Volume) (*os.File, error) {
	p := v.Pool
	var f *os.File
	if p.Kind.Directory() {
		root, err := p.Open()
		if err != nil {
			return nil, err
		}
		defer root.Close()
		if f, err = root.Open(path.Join(volumesDir, v.ID)); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: volume %s: %v", ErrDirMissing, v.ID, err)
		} else if err != nil {
			return nil, fmt.Errorf("%w: volume %s: %v", ErrUnhealthy, v.ID, err)
		}
	} else {
		d := p.Disk(v.ID)
		if d == nil || !disk.MountRoot(d.Path) {
			return nil, fmt.Errorf("%w: disk of volume %s is not mounted", ErrUnhealthy, v.ID)
		}
		if err := m.devs.CheckMounted(v.ID, d.Path); err != nil {
			return nil, err
		}
		var err error
		if f, err = os.Open(d.Path); err != nil {
			return nil, fmt.Errorf("%w: volume %s: %v", ErrUnhealthy, v.ID, err)
		}
	}
	if fi, err := f.Stat(); err != nil || !fi.IsDir() {
		f.Close()
		return nil, fmt.Errorf("%w: volume %s: its directory is not a directory", ErrUnhealthy, v.ID)
	}
	return f, nil
}
