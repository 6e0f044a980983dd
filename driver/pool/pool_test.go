package pool

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
)

func TestDirVolumeSize(t *testing.T) {
	for _, tc := range []struct {
		required, limit, want int64
		err                   error
	}{
		{0, 0, DefaultVolumeSize, nil},
		{1, 0, MiB, nil},
		{MiB, MiB, MiB, nil},
		{MiB + 1, 0, 2 * MiB, nil},
		{MiB + 1, 3 * MiB, 2 * MiB, nil},
		{0, 5*MiB + 7, 5 * MiB, nil},
		{MiB + 1, MiB + 2, 0, ErrOutOfRange},
		{0, MiB - 1, 0, ErrOutOfRange},
		{math.MaxInt64, 0, 0, ErrOutOfRange},
		{-1, 0, 0, ErrInvalidRange},
		{0, -1, 0, ErrInvalidRange},
		{2 * MiB, MiB, 0, ErrInvalidRange},
	} {
		t.Run(fmt.Sprintf("%d-%d", tc.required, tc.limit), func(t *testing.T) {
			got, err := DirVolumeSize(tc.required, tc.limit)
			if !errors.Is(err, tc.err) || got != tc.want {
				t.Errorf("= %d, %v; want %d, %v", got, err, tc.want, tc.err)
			}
		})
	}
}

func TestPool_Reserve(t *testing.T) {
	p := New(Spec{Name: "p", Kind: Path}, 10*MiB+5, nil)
	if p.Capacity() != 10*MiB {
		t.Fatalf("capacity = %d, want it rounded down to 10 MiB", p.Capacity())
	}
	ok := func() error { return nil }
	if err := p.Reserve(11*MiB, ok); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("more than the pool: %v, want ErrOutOfRange", err)
	}
	if err := p.Reserve(6*MiB, ok); err != nil {
		t.Fatal(err)
	}
	if err := p.Reserve(5*MiB, ok); !errors.Is(err, ErrInsufficientCapacity) {
		t.Errorf("more than free: %v, want ErrInsufficientCapacity", err)
	}
	boom := errors.New("disk full")
	if err := p.Reserve(MiB, func() error { return boom }); !errors.Is(err, boom) {
		t.Errorf("failed write: %v", err)
	}
	if u := p.Usage(nil); u.Allocated != 6*MiB || u.Free != 4*MiB {
		t.Errorf("a failed write charged: %+v", u)
	}
	if err := p.Release(6*MiB, func() error { return boom }); err == nil {
		t.Error("release with a failed write succeeded")
	}
	if err := p.Release(6*MiB, ok); err != nil || p.Usage(nil).Free != 10*MiB {
		t.Errorf("release: %v %+v", err, p.Usage(nil))
	}
}

func TestPool_ReserveOverflow(t *testing.T) {
	p := New(Spec{Name: "p", Kind: Root}, math.MaxInt64, nil)
	ok := func() error { return nil }
	if err := p.Reserve(p.Capacity()-MiB, ok); err != nil {
		t.Fatal(err)
	}
	if err := p.Reserve(2*MiB, ok); !errors.Is(err, ErrInsufficientCapacity) {
		t.Errorf("overflowing reserve: %v", err)
	}
	p.Charge(math.MaxInt64) // saturates instead of wrapping negative
	if u := p.Usage(nil); u.Allocated != math.MaxInt64 || u.Free != 0 {
		t.Errorf("after overflow: %+v", u)
	}
}

func TestPool_ShrunkBelowAllocated(t *testing.T) {
	p := New(Spec{Name: "p", Kind: Path}, 4*MiB, nil)
	p.Charge(6 * MiB) // records from before the operator shrank the pool
	if u := p.Usage(nil); u.Free != 0 || u.MaxVolume != 0 {
		t.Errorf("usage = %+v, want no free room", u)
	}
	if err := p.Reserve(MiB, func() error { return nil }); !errors.Is(err, ErrInsufficientCapacity) {
		t.Errorf("reserve = %v", err)
	}
}

func TestPool_ReserveConcurrent(t *testing.T) {
	p := New(Spec{Name: "p", Kind: Root}, 10*MiB, nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if p.Reserve(MiB, func() error { return nil }) == nil {
				mu.Lock()
				won++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if won != 10 {
		t.Errorf("%d reservations of 1 MiB succeeded in a 10 MiB pool", won)
	}
}

func TestPool_ClaimDisk(t *testing.T) {
	disks := []*Disk{disk("d-c", 30*MiB), disk("d-a", 10*MiB), disk("d-b", 20*MiB)}
	p := New(Spec{Name: "d", Kind: Mount}, 0, disks)
	ok := func(*Disk) error { return nil }
	d, err := p.ClaimDisk(15*MiB, 0, nil, ok)
	if err != nil || d.ID != "d-b" {
		t.Fatalf("claim = %v, %v; want the smallest that fits (d-b)", d, err)
	}
	if _, err := p.ClaimDisk(40*MiB, 0, nil, ok); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("too large: %v", err)
	}
	if _, err := p.ClaimDisk(15*MiB, 25*MiB, nil, ok); !errors.Is(err, ErrInsufficientCapacity) {
		t.Errorf("only fitting disk taken: %v", err)
	}
	notA := func(d *Disk) bool { return d.ID != "d-a" }
	if d, err := p.ClaimDisk(0, 0, notA, ok); err != nil || d.ID != "d-c" {
		t.Errorf("unusable disk skipped: %v %v", d, err)
	}
	u := p.Usage(notA)
	if u.Allocated != 50*MiB || u.FreeDisks != 0 || u.Capacity != 60*MiB {
		t.Errorf("usage = %+v", u)
	}
	if err := p.SetClaimed("d-b", false, nil); err != nil || p.Claimed("d-b") {
		t.Errorf("unclaim: %v", err)
	}
	if u := p.Usage(nil); u.FreeDisks != 2 || u.MaxVolume != 20*MiB {
		t.Errorf("usage after unclaim = %+v", u)
	}
}

// A request that names no size gets the default, or what the pool still
// holds when that is less (never OUT_OF_RANGE for a size nobody asked for).
func TestPool_ReserveUpTo(t *testing.T) {
	p := New(Spec{Name: "p", Kind: Path}, 10*MiB, nil)
	var wrote []int64
	write := func(size int64) error { wrote = append(wrote, size); return nil }
	if got, err := p.ReserveUpTo(DefaultVolumeSize, write); err != nil || got != 10*MiB {
		t.Fatalf("default on a 10 MiB pool = %d, %v; want the 10 MiB it holds", got, err)
	}
	if _, err := p.ReserveUpTo(DefaultVolumeSize, write); !errors.Is(err, ErrInsufficientCapacity) {
		t.Errorf("default on a full pool: %v, want ErrInsufficientCapacity", err)
	}
	if err := p.Release(10*MiB, func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := p.Reserve(3*MiB, func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	if got, err := p.ReserveUpTo(4*MiB+5, write); err != nil || got != 4*MiB {
		t.Errorf("ceiling of 4 MiB + 5 = %d, %v; want 4 MiB", got, err)
	}
	if got, err := p.ReserveUpTo(DefaultVolumeSize, write); err != nil || got != 3*MiB {
		t.Errorf("default with 3 MiB left = %d, %v; want 3 MiB", got, err)
	}
	if len(wrote) != 3 || wrote[0] != 10*MiB || wrote[1] != 4*MiB || wrote[2] != 3*MiB {
		t.Errorf("write saw sizes %v, want [10 MiB 4 MiB 3 MiB]", wrote)
	}
	boom := errors.New("disk full")
	if err := p.Release(3*MiB, func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := p.ReserveUpTo(DefaultVolumeSize, func(int64) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("failed write: %v", err)
	}
	if u := p.Usage(nil); u.Allocated != 7*MiB {
		t.Errorf("a failed write charged: %+v", u)
	}
	tiny := New(Spec{Name: "tiny", Kind: Root}, MiB-1, nil)
	if _, err := tiny.ReserveUpTo(DefaultVolumeSize, write); !errors.Is(err, ErrOutOfRange) {
		t.Errorf("a pool below 1 MiB: %v, want ErrOutOfRange", err)
	}
}

// disk is a measured disk of size bytes.
func disk(id string, size int64) *Disk {
	d := &Disk{ID: id}
	d.size.Store(size)
	return d
}

// A disk's size is measured while the pool is read and claimed (run with
// -race): it has one rule, atomic, wherever it is read. Usage and ClaimDisk
// ask the usable filter with the accounting mutex free (the filter takes
// the pool's own accounting paths, which would deadlock under it), and Gen
// changes with every claim and measurement.
func TestPool_DiskSizeAndUsableOutsideTheMutex(t *testing.T) {
	disks := []*Disk{{ID: "d-a"}, {ID: "d-b"}}
	p := New(Spec{Name: "d", Kind: Mount}, 0, disks)
	usable := func(d *Disk) bool {
		p.Claimed(d.ID) // takes the mutex: Usage must not hold it here
		return d.Size() > 0
	}
	gen := p.Gen()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		for _, d := range disks {
			p.SetDiskSize(d, 10*MiB+1)
		}
	}()
	go func() {
		defer wg.Done()
		for range 100 {
			if u := p.Usage(usable); u.Free%MiB != 0 || u.Free > 20*MiB {
				t.Errorf("usage = %+v", u)
			}
		}
	}()
	wg.Wait()
	if u := p.Usage(usable); u.Free != 20*MiB || u.FreeDisks != 2 {
		t.Errorf("usage once measured = %+v, want 2 disks of 10 MiB", u)
	}
	if p.Gen() == gen {
		t.Error("Gen did not change when the disks were measured")
	}
	gen = p.Gen()
	p.SetDiskSize(disks[0], 10*MiB)
	if p.Gen() != gen {
		t.Error("Gen changed although no size did")
	}
	d, err := p.ClaimDisk(0, 0, usable, func(*Disk) error { return nil })
	if err != nil || p.Gen() == gen {
		t.Errorf("claim: %v %v, gen %d (was %d)", d, err, p.Gen(), gen)
	}
}
