package volume

import (
	"context"
	"fmt"

	"github.com/localdisk-csi/localdisk/driver/failpoint"
	"github.com/localdisk-csi/localdisk/driver/pool"
)

// Expand grows a volume to the requested range and returns its new
// capacity. A ROOT/PATH volume grows within its pool's free room
// (pool.ErrInsufficientCapacity otherwise; pool.ErrOutOfRange beyond the
// pool's size); a MOUNT volume is its whole disk, so it can only "grow" to at
// most the disk's size (pool.ErrOutOfRange beyond). Shrinking is refused
// (pool.ErrOutOfRange); a request the volume already satisfies succeeds
// unchanged.
//
// The new size is recorded (and charged) before anything enforces it, so a
// crash in between leaves a record that start-up enforces.
func (m *Manager) Expand(ctx context.Context, id string, required, limit int64) (int64, error) {
	if err := pool.CheckRange(required, limit); err != nil {
		return 0, err
	}
	unlock, err := m.Lock(ctx, IDKey(id))
	if err != nil {
		return 0, err
	}
	defer unlock()
	v, err := m.Lookup(id)
	if err != nil {
		return 0, err
	}
	if limit > 0 && limit < v.Capacity {
		return 0, fmt.Errorf("%w: volume %s has %d bytes; shrinking to %d is not supported", pool.ErrOutOfRange, id, v.Capacity, limit)
	}
	if required <= v.Capacity {
		return v.Capacity, nil
	}
	p := v.Pool
	if !p.Kind.Directory() {
		return 0, fmt.Errorf("%w: volume %s is a whole disk of %d bytes", pool.ErrOutOfRange, id, v.Capacity)
	}
	size, err := pool.DirVolumeSize(required, limit)
	if err != nil {
		return 0, err
	}
	if err := p.Check(id); err != nil {
		return 0, err
	}
	if err := p.QuotaUnmet(); err != nil {
		return 0, err
	}
	if room, _, ok := m.room(p); ok && size > v.Capacity && size <= p.Capacity() && size-v.Capacity > room {
		return 0, fmt.Errorf("%w: pool %q: its filesystem has %d bytes free beyond its reserve and what its volumes may still write", pool.ErrInsufficientCapacity, p.Name, room)
	}
	rec := m.recs.Record(id)
	rec.Capacity = size
	if err := p.Grow(v.Capacity, size, func() error { return m.recs.Put(rec) }); err != nil {
		return 0, err
	}
	failpoint.Inject(failpoint.ExpandRecorded)
	root, err := p.Open()
	if err != nil {
		return 0, err
	}
	defer root.Close()
	if err := m.reapplyLimitOf(root, p, rec); err != nil {
		return 0, fmt.Errorf("raise the quota of volume %s: %w", id, err) // start-up re-applies it
	}
	return size, nil
}
