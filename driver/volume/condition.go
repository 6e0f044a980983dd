package volume

import (
	"errors"
	"fmt"
	"slices"

	"github.com/localdisk-csi/localdisk/driver/state"
)

// Condition is something known to be wrong with a volume, for the CSI
// health RPCs of the controller and the node.
type Condition struct {
	// Inaccessible: the volume cannot be used now; otherwise it is usable
	// but not as it should be (degraded).
	Inaccessible bool
	// Reason is a CamelCase word: PoolUnavailable, DirectoryMissing,
	// DiskMissing, DiskReplaced, OverCapacity or ErasePending.
	Reason string
	// Message says it for a person.
	Message string
}

// Health reports the conditions of volume id: none for a healthy volume,
// ErrNotFound for one that does not exist. It measures what the node
// knows: the pool and its disk, the volume's directory, its usage against
// its capacity where that is only accounted, and an erase still pending
// after DeleteVolume answered.
func (m *Manager) Health(id string) ([]Condition, error) {
	if r := m.record(id); r != nil && r.Phase == state.Deleting {
		return []Condition{{Inaccessible: true, Reason: "ErasePending",
			Message: fmt.Sprintf("volume %s is deleted; its disk is still being wiped or erased and is handed out again once that is done", id)}}, nil
	}
	v, err := m.Lookup(id)
	if errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if errors.Is(err, ErrBusy) { // being created: nothing is wrong yet
		return nil, nil
	}
	var u Usage
	if err == nil {
		u, err = m.Usage(v)
	}
	if err != nil {
		return []Condition{unavailable(err, v != nil && !v.Pool.Kind.Directory())}, nil
	}
	if v.Pool.Kind.Directory() && u.Bytes > v.Capacity {
		return []Condition{{Reason: "OverCapacity",
			Message: fmt.Sprintf("volume uses %d bytes, more than its capacity of %d (capacity is not enforced on this pool)", u.Bytes, v.Capacity)}}, nil
	}
	return nil, nil
}

// unavailable names why a volume cannot be reached; disk: it is a MOUNT
// volume, whose pool is its disk.
func unavailable(err error, disk bool) Condition {
	c := Condition{Inaccessible: true, Reason: "PoolUnavailable", Message: err.Error()}
	switch {
	case errors.Is(err, ErrDirMissing):
		c.Reason = "DirectoryMissing"
	case errors.Is(err, ErrDiskReplaced):
		c.Reason = "DiskReplaced"
	case disk:
		c.Reason = "DiskMissing"
	}
	return c
}

// HealthIDs lists, in increasing order, the IDs whose health the CO may ask
// for: every listed volume, and every deleted one whose disk is still being
// wiped or erased.
func (m *Manager) HealthIDs() []string {
	vols := m.List()
	ids := make([]string, 0, len(vols))
	for _, v := range vols {
		ids = append(ids, v.ID)
	}
	m.mu.RLock()
	for _, r := range m.records {
		if r.Phase == state.Deleting {
			ids = append(ids, r.ID)
		}
	}
	m.mu.RUnlock()
	slices.Sort(ids)
	return slices.Compact(ids)
}
