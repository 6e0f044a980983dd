package poolroot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"

	"github.com/localdisk-csi/localdisk/driver/capacity"
	"github.com/localdisk-csi/localdisk/driver/disk"
)

// ErrDirMissing: the pool is there, but the volume's directory is not (a
// capacity.ErrUnhealthy; volume.ErrDirMissing).
var ErrDirMissing = fmt.Errorf("%w: volume directory missing", capacity.ErrUnhealthy)

// OpenVolumeDir opens the directory of volume id for mounting, after
// checking that the pool is healthy (the marker is the recorded one, or the
// MOUNT disk is mounted and still the volume's: checkMounted, see
// devfind.Finder.CheckMounted). The directory is reached through the pool
// root with os.Root, so nothing planted inside a pool can redirect it.
func (p *Pool) OpenVolumeDir(id string, checkMounted func(id, dir string) error) (*os.File, error) {
	var f *os.File
	if p.Kind.Directory() {
		root, err := p.Open()
		if err != nil {
			return nil, err
		}
		defer root.Close()
		if f, err = root.Open(path.Join(volumesDir, id)); errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("%w: volume %s: %v", ErrDirMissing, id, err)
		} else if err != nil {
			return nil, fmt.Errorf("%w: volume %s: %v", capacity.ErrUnhealthy, id, err)
		}
	} else {
		d := p.Disk(id)
		if d == nil || !disk.MountRoot(d.Path) {
			return nil, fmt.Errorf("%w: disk of volume %s is not mounted", capacity.ErrUnhealthy, id)
		}
		if err := checkMounted(id, d.Path); err != nil {
			return nil, err
		}
		var err error
		if f, err = os.Open(d.Path); err != nil {
			return nil, fmt.Errorf("%w: volume %s: %v", capacity.ErrUnhealthy, id, err)
		}
	}
	if fi, err := f.Stat(); err != nil || !fi.IsDir() {
		f.Close()
		return nil, fmt.Errorf("%w: volume %s: its directory is not a directory", capacity.ErrUnhealthy, id)
	}
	return f, nil
}
