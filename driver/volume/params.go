package volume

import (
	"fmt"

	"github.com/localdisk-csi/localdisk/driver/volume/selector"
)

// Selector picks pools: by name, by kind, or (both empty) all of them
// (driver/volume/selector).
type Selector = selector.Selector

// ParseSelector reads CreateVolume/GetCapacity parameters. Unknown keys,
// unknown pools and kinds, and a pool of another kind than asked are
// ErrInvalid.
func (m *Manager) ParseSelector(params map[string]string) (Selector, error) {
	s, err := selector.Parse(params, m.pools)
	if err != nil {
		return s, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return s, nil
}

// candidates are the selected pools, ROOT first, then PATH, then MOUNT, each
// kind in configuration order.
func (m *Manager) candidates(s Selector) []*Pool { return s.Candidates(m.order) }

// fsTypeCandidates leaves out the directory pools on another filesystem
// than fs_type asks for (selector.ByFSType); ErrInvalid when no pool is
// left for that reason alone.
func fsTypeCandidates(cands []*Pool, fsType string) ([]*Pool, error) {
	kept, err := selector.ByFSType(cands, fsType)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalid, err)
	}
	return kept, nil
}

// contextOf is the pool's volume_context, one map shared by its volumes
// (read-only).
func contextOf(p *Pool) map[string]string { return p.VolumeContext() }
