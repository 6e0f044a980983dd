package volume

import (
	"errors"
	"fmt"
	"slices"

	"github.com/localdisk-csi/localdisk/driver/state"
)

// Severity is how bad a Condition is, as CSI grades volume health.
type Severity int

const (
	// Degraded: usable, but not as it should be.
	Degraded Severity = iota
	// Inaccessible: it cannot be used now.
	Inaccessible
	// DataLoss: its data is known or strongly suspected to be gone.
	DataLoss
)

// Condition is something known to be wrong with a volume, for the CSI
// health RPCs of the controller and the node.
type Condition struct {
	Severity Severity
	// Reason is a CamelCase word: PoolUnavailable, DirectoryMissing,
	// DiskMissing, DiskReplaced, OverCapacity or ErasePending.
	Reason string
	// Message says it for a person.
	Message string
}

// Health reports the conditions of volume id: none for a healthy volume,
// ErrNotFound for one that does not exist (a deleted one too, even while
// its disk is being wiped). It measures what the node knows: the pool and
// its disk, the volume's directory, its usage against its capacity where
// that is only accounted, and the erase of a listed pre-existing disk,
// which stays a volume for the CO. With walk false, usage is taken only
// from the cache (filled by stats and earlier calls): no tree is walked.
func (m *Manager) Health(id string, walk bool) ([]Condition, error) {
	if r := m.recs.Record(id); r != nil && r.Phase == state.Deleting {
		if r.Name != "" { // deleted for the CO
			return nil, fmt.Errorf("%w: %s was deleted", ErrNotFound, id)
		}
		return []Condition{{Severity: Inaccessible, Reason: "ErasePending",
			Message: fmt.Sprintf("disk %s is being wiped or erased; it is listed again once that is done", id)}}, nil
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
		return []Condition{unavailable(err, v != nil && !v.Pool.Kind.Directory())}, nil
	case err != nil:
		return nil, fmt.Errorf("health of volume %s: %w", id, err)
	case v.Pool.Kind.Directory() && u.Bytes > v.Capacity:
		return []Condition{{Severity: Degraded, Reason: "OverCapacity",
			Message: fmt.Sprintf("volume uses %d bytes, more than its capacity of %d (capacity is not enforced on this pool)", u.Bytes, v.Capacity)}}, nil
	}
	return nil, nil
}

// unavailable names why a volume cannot be reached; disk: it is a MOUNT
// volume, whose pool is its disk.
func unavailable(err error, disk bool) Condition {
	c := Condition{Severity: Inaccessible, Reason: "PoolUnavailable", Message: err.Error()}
	switch {
	case errors.Is(err, ErrDirMissing): // its pool is there, its data is not
		c.Severity, c.Reason = DataLoss, "DirectoryMissing"
	case errors.Is(err, ErrDiskReplaced):
		c.Reason = "DiskReplaced"
	case disk:
		c.Reason = "DiskMissing"
	}
	return c
}

// HealthIDs lists, in increasing order, the IDs whose health the CO may ask
// for: every listed volume, and every listed pre-existing disk that is
// being erased.
func (m *Manager) HealthIDs() []string {
	vols := m.List()
	ids := make([]string, 0, len(vols))
	for _, v := range vols {
		ids = append(ids, v.ID)
	}
	m.recs.Each(func(r *state.Record) {
		if r.Phase == state.Deleting && r.Name == "" {
			ids = append(ids, r.ID)
		}
	})
	slices.Sort(ids)
	return slices.Compact(ids)
}
