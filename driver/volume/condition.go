package volume

import (
	"errors"
	"fmt"

	"github.com/localdisk-csi/localdisk/driver/state"
	"github.com/localdisk-csi/localdisk/driver/volume/health"
)

// Condition is something known to be wrong with a volume (health.Condition).
type Condition = health.Condition

// Health reports the conditions of volume id: none for a healthy volume,
// ErrNotFound for one that does not exist (a deleted one too, even while
// its disk is being wiped). It measures what the node knows: the pool and
// its disk, the volume's directory, its usage against its capacity where
// that is only accounted, and the erase of a listed pre-existing disk,
// which stays a volume for the CO. With walk false, usage is taken only
// from the cache (filled by stats and earlier calls): no tree is walked.
// How the facts read is driver/volume/health's.
func (m *Manager) Health(id string, walk bool) ([]Condition, error) {
	if r := m.recs.Record(id); r != nil && r.Phase == state.Deleting {
		if r.Name != "" { // deleted for the CO
			return nil, fmt.Errorf("%w: %s was deleted", ErrNotFound, id)
		}
		return []Condition{health.ErasePending(id)}, nil
	}
	v, err := m.Lookup(id)
	if errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if errors.Is(err, ErrBusy) { // a legacy `creating` record: nothing is wrong yet
		return nil, nil
	}
	var u Usage
	if err == nil {
		if walk {
			u, err = m.Usage(v)
		} else {
			u, err = m.cachedUsage(v)
		}
	}
	switch {
	case errors.Is(err, ErrUnhealthy):
		return []Condition{health.Unavailable(err, errors.Is(err, ErrDirMissing), errors.Is(err, ErrDiskReplaced),
			v != nil && !v.Pool.Kind.Directory())}, nil
	case err != nil:
		return nil, fmt.Errorf("health of volume %s: %w", id, err)
	case v.Pool.Kind.Directory() && u.Bytes > v.Capacity:
		return []Condition{health.OverCapacity(u.Bytes, v.Capacity)}, nil
	}
	return nil, nil
}

// HealthIDs lists, in increasing order, the IDs whose health the CO may ask
// for: every listed volume, and every listed pre-existing disk that is
// being erased (health.IDs).
func (m *Manager) HealthIDs() []string {
	vols := m.List()
	ids := make([]string, 0, len(vols))
	for _, v := range vols {
		ids = append(ids, v.ID)
	}
	var erasing []string
	m.recs.Each(func(r *state.Record) {
		if r.Phase == state.Deleting && r.Name == "" {
			erasing = append(erasing, r.ID)
		}
	})
	return health.IDs(ids, erasing)
}
