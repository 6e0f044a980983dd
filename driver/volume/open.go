package volume

import "os"

// OpenDir opens the volume's directory for mounting, after checking that its
// pool is healthy (the marker is the recorded one, or the MOUNT disk is
// mounted and still the volume's): poolroot.Pool.OpenVolumeDir. The
// directory is reached through the pool root with os.Root, so nothing
// planted inside a pool can redirect it.
func (m *Manager) OpenDir(v *Volume) (*os.File, error) {
	return v.Pool.OpenVolumeDir(v.ID, m.devs.CheckMounted)
}
