package pool

import (
	"fmt"
	"math"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/localdisk-csi/localdisk/driver/layout"
)

// DefaultVolumeSize is the size of a ROOT or PATH volume whose request names
// no required bytes, when its pool has that much free (else what it has
// free: ReserveUpTo).
const DefaultVolumeSize = 1 << 30

// Pool is a configured pool at run time: its capacity and what is charged
// against it. Charging happens only under the pool's short accounting mutex,
// together with the state write that makes the charge durable. Nothing is
// measured under the mutex: the filters that say which disks are usable
// (they stat them) run before it is taken.
type Pool struct {
	Spec
	// Disks are the MOUNT pool's disks, sorted by size then ID when the
	// pool is made. The slice and each Disk's fields but its size (Size,
	// SetDiskSize) never change.
	Disks []*Disk

	mu        sync.Mutex
	capacity  int64 // what a ROOT/PATH pool may hand out, whole MiB
	allocated int64
	claimed   map[string]bool // disk ID -> claimed by a volume record
	gen       atomic.Uint64   // bumped by every change of claimed or of a disk's size
}

// Disk is one whole disk of a MOUNT pool.
type Disk struct {
	// ID is the volume ID of the disk (layout.DiskID).
	ID string
	// Path is the disk's mount root (a mounted disk).
	Path string
	// Device is the configured block device (a device disk), FSType and
	// MkfsOptions how to format it when blank.
	Device      string
	FSType      string
	MkfsOptions []string
	// size is the filesystem's (mounted disk) or device's size, whole MiB,
	// 0 until measured: read with Size and set with Pool.SetDiskSize,
	// atomically, so it is read anywhere without the pool's mutex.
	size atomic.Int64
}

// IsDevice reports whether the disk is a block device localdisk mounts.
func (d *Disk) IsDevice() bool { return d.Device != "" }

// Size is the disk's size in whole MiB, 0 until it was measured.
func (d *Disk) Size() int64 { return d.size.Load() }

// New makes a pool; capacity is the ROOT/PATH capacity in bytes (rounded
// down to MiB), disks the measured MOUNT disks.
func New(spec Spec, capacity int64, disks []*Disk) *Pool {
	p := &Pool{Spec: spec, capacity: FloorMiB(max(capacity, 0)), claimed: map[string]bool{}}
	p.Disks = append(p.Disks, disks...)
	sort.Slice(p.Disks, func(i, j int) bool {
		a, b := p.Disks[i], p.Disks[j]
		return a.Size() < b.Size() || a.Size() == b.Size() && a.ID < b.ID
	})
	return p
}

// Disk returns the pool's disk of that volume ID (see layout.DiskOf).
func (p *Pool) Disk(id string) *Disk {
	id = layout.DiskOf(id)
	for _, d := range p.Disks {
		if d.ID == id {
			return d
		}
	}
	return nil
}

// DirVolumeSize is the capacity a ROOT or PATH volume gets for a request:
// required rounded up to whole MiB, never above limit (0: no limit); with no
// required bytes, DefaultVolumeSize capped by the limit rounded down.
func DirVolumeSize(required, limit int64) (int64, error) {
	if err := CheckRange(required, limit); err != nil {
		return 0, err
	}
	size := int64(DefaultVolumeSize)
	if required > 0 {
		var ok bool
		if size, ok = CeilMiB(required); !ok {
			return 0, fmt.Errorf("%w: %d bytes is too large", ErrOutOfRange, required)
		}
	}
	if limit > 0 && size > limit {
		if required > 0 {
			return 0, fmt.Errorf("%w: no whole MiB between %d and %d bytes", ErrOutOfRange, required, limit)
		}
		if size = FloorMiB(limit); size == 0 {
			return 0, fmt.Errorf("%w: limit %d bytes is below 1 MiB", ErrOutOfRange, limit)
		}
	}
	return size, nil
}

// CheckRange rejects negative and inverted capacity ranges.
func CheckRange(required, limit int64) error {
	if required < 0 || limit < 0 {
		return fmt.Errorf("%w: required_bytes and limit_bytes must not be negative", ErrInvalidRange)
	}
	if limit > 0 && required > limit {
		return fmt.Errorf("%w: required_bytes %d is above limit_bytes %d", ErrInvalidRange, required, limit)
	}
	return nil
}

// Fits reports whether a disk of this size satisfies the range.
func Fits(size, required, limit int64) bool {
	return size >= required && (limit == 0 || size <= limit)
}

// Usage is a snapshot of a pool's accounting.
type Usage struct {
	Capacity, Allocated, Free int64
	// MaxVolume is the largest volume that could be created now.
	MaxVolume int64
	// FreeDisks counts unclaimed MOUNT disks.
	FreeDisks int
}

// Usage reports the pool's accounting. usable filters MOUNT disks that can be
// handed out now (mounted and healthy); nil means all. It is asked of
// every disk before the accounting mutex is taken.
func (p *Pool) Usage(usable func(*Disk) bool) Usage {
	if p.Kind.Directory() {
		p.mu.Lock()
		defer p.mu.Unlock()
		free := max(p.capacity-p.allocated, 0)
		return Usage{Capacity: p.capacity, Allocated: p.allocated, Free: free, MaxVolume: free}
	}
	ok := usableDisks(p.Disks, usable, nil)
	p.mu.Lock()
	defer p.mu.Unlock()
	var u Usage
	for i, d := range p.Disks {
		size := d.Size()
		u.Capacity += size
		if p.claimed[d.ID] {
			u.Allocated += size
		} else if ok[i] {
			u.Free += size
			u.FreeDisks++
			u.MaxVolume = max(u.MaxVolume, size)
		}
	}
	return u
}

// usableDisks asks usable (nil: every disk is) of each disk that want
// (nil: every disk) selects, with no lock held: usable may stat them.
func usableDisks(disks []*Disk, usable func(*Disk) bool, want func(*Disk) bool) []bool {
	ok := make([]bool, len(disks))
	for i, d := range disks {
		ok[i] = (want == nil || want(d)) && (usable == nil || usable(d))
	}
	return ok
}

// Reserve charges size bytes to a ROOT or PATH pool, then calls write (the
// durable record of the charge) outside the accounting mutex, so concurrent
// operations never queue behind each other's fsync; the charge is undone when
// write fails. Charging before writing never over-commits: a concurrent
// request sees the room as taken. ErrOutOfRange: the pool could never hold
// size; ErrInsufficientCapacity: not now.
func (p *Pool) Reserve(size int64, write func() error) error {
	return p.Grow(0, size, write)
}

// ReserveUpTo charges a ROOT or PATH pool with the largest whole-MiB size
// of at most ceiling that it has free now, then calls write with that size
// (the durable record of the charge) outside the accounting mutex, undoing
// the charge when write fails: a request that names no capacity gets a
// default that fits the pool. ErrOutOfRange: the pool could never hold
// 1 MiB; ErrInsufficientCapacity: it has not 1 MiB free now.
func (p *Pool) ReserveUpTo(ceiling int64, write func(size int64) error) (int64, error) {
	p.mu.Lock()
	if p.capacity < MiB {
		p.mu.Unlock()
		return 0, fmt.Errorf("%w: pool %q: capacity %d bytes holds no volume", ErrOutOfRange, p.Name, p.capacity)
	}
	size := FloorMiB(min(ceiling, p.capacity-p.allocated))
	if size < MiB {
		p.mu.Unlock()
		return 0, fmt.Errorf("%w: pool %q: less than 1 MiB free", ErrInsufficientCapacity, p.Name)
	}
	p.allocated += size
	p.mu.Unlock()
	if err := write(size); err != nil {
		p.mu.Lock()
		p.allocated -= size
		p.mu.Unlock()
		return 0, err
	}
	return size, nil
}

// Grow charges a volume growing from `from` to `to` bytes, like Reserve:
// ErrOutOfRange when the pool could never hold `to`, ErrInsufficientCapacity
// when it has not the difference free now.
func (p *Pool) Grow(from, to int64, write func() error) error {
	p.mu.Lock()
	if to > p.capacity {
		p.mu.Unlock()
		return fmt.Errorf("%w: pool %q: requested %d bytes, capacity %d", ErrOutOfRange, p.Name, to, p.capacity)
	}
	if free := p.capacity - p.allocated; to-from > free {
		p.mu.Unlock()
		return fmt.Errorf("%w: pool %q: requested %d more bytes, %d free", ErrInsufficientCapacity, p.Name, to-from, max(free, 0))
	}
	p.allocated += to - from
	p.mu.Unlock()
	if err := write(); err != nil {
		p.mu.Lock()
		p.allocated -= to - from
		p.mu.Unlock()
		return err
	}
	return nil
}

// Capacity is what a ROOT/PATH pool may hand out, whole MiB.
func (p *Pool) Capacity() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.capacity
}

// SetCapacity sets it, once the pool's filesystem could be measured.
func (p *Pool) SetCapacity(bytes int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.capacity = FloorMiB(max(bytes, 0))
}

// SetDiskSize records a MOUNT disk's size, once it could be measured.
func (p *Pool) SetDiskSize(d *Disk, bytes int64) {
	size := FloorMiB(max(bytes, 0))
	if d.size.Swap(size) != size {
		p.gen.Add(1)
	}
}

// Gen changes whenever a disk of the pool is claimed or freed or its size
// is measured: what the pool lists of its free disks may have changed.
func (p *Pool) Gen() uint64 { return p.gen.Load() }

// Release undoes a charge once write (the record's removal) succeeded; the
// room is held until then.
func (p *Pool) Release(size int64, write func() error) error {
	if err := write(); err != nil {
		return err
	}
	p.mu.Lock()
	p.allocated -= size
	p.mu.Unlock()
	return nil
}

// Charge counts an existing record at start-up. It never fails: a pool shrunk
// below what its volumes hold keeps serving them and reports no free room.
func (p *Pool) Charge(size int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.allocated > math.MaxInt64-size {
		p.allocated = math.MaxInt64
		return
	}
	p.allocated += size
}

// ClaimDisk claims the smallest free usable disk whose size fits the range,
// then calls write for it outside the accounting mutex; the claim is undone
// when write fails. usable is asked of the disks that fit before the mutex
// is taken. ErrOutOfRange: no disk of the pool could ever fit.
func (p *Pool) ClaimDisk(required, limit int64, usable func(*Disk) bool, write func(*Disk) error) (*Disk, error) {
	fits := func(d *Disk) bool { return Fits(d.Size(), required, limit) }
	ok := usableDisks(p.Disks, usable, fits)
	p.mu.Lock()
	anyFits := false
	for i, d := range p.Disks {
		if !fits(d) {
			continue
		}
		anyFits = true
		if p.claimed[d.ID] || !ok[i] {
			continue
		}
		p.claimed[d.ID] = true
		p.gen.Add(1)
		p.mu.Unlock()
		if err := write(d); err != nil {
			p.mu.Lock()
			delete(p.claimed, d.ID)
			p.gen.Add(1)
			p.mu.Unlock()
			return nil, err
		}
		return d, nil
	}
	p.mu.Unlock()
	if !anyFits {
		return nil, fmt.Errorf("%w: pool %q has no disk between %d and %d bytes", ErrOutOfRange, p.Name, required, limit)
	}
	return nil, fmt.Errorf("%w: pool %q: no free disk between %d and %d bytes", ErrInsufficientCapacity, p.Name, required, limit)
}

// SetClaimed marks a disk claimed or free once write (if any) succeeded.
func (p *Pool) SetClaimed(id string, claimed bool, write func() error) error {
	if write != nil {
		if err := write(); err != nil {
			return err
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if claimed {
		p.claimed[layout.DiskOf(id)] = true
	} else {
		delete(p.claimed, layout.DiskOf(id))
	}
	p.gen.Add(1)
	return nil
}

// Claimed reports whether a disk is claimed by a volume record.
func (p *Pool) Claimed(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.claimed[layout.DiskOf(id)]
}
