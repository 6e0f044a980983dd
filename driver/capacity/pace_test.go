package capacity

import (
	"context"
	"testing"
	"time"

	"github.com/localdisk-csi/localdisk/driver/pool"
)

func TestPacer_SleepsItsShare(t *testing.T) {
	var slept time.Duration
	p := NewPacer(context.Background(), 0.1)
	p.sleep = func(d time.Duration) { slept += d }
	for range 1000 {
		p.Step(100 * time.Microsecond) // 100 ms of work in all
	}
	if want := 900 * time.Millisecond; slept != want {
		t.Errorf("slept %v for 100ms of work at a 10%% share, want %v", slept, want)
	}
	p = NewPacer(context.Background(), 1)
	p.sleep = func(time.Duration) { t.Fatal("a pacer at a whole CPU slept") }
	p.Step(time.Second)
}

// A pacer's sleep ends when its context does: a walk stops at once on
// shutdown, not after the 99 s a 1 s step at 1 % would sleep.
func TestPacer_StopsSleepingWhenItsContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	p := NewPacer(ctx, 0.01)
	done := make(chan struct{})
	go func() { p.Step(time.Second); close(done) }()
	cancel()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the pacer still sleeps 30 s after its context ended")
	}
}

// A settled allocation (a ready snapshot's charge) is not held back from
// the room a second time: its data is already gone from the free space.
func TestRoom_SettledIsNotUnwritten(t *testing.T) {
	base := t.TempDir()
	p := NewPool(pool.New(pool.Spec{Name: "r", Kind: pool.Root, Path: base, Reserve: &pool.Amount{Bytes: 1}}, 1<<50, nil), base)
	all := []*Pool{p}
	before, _, ok := Room(p, all)
	if !ok {
		t.Skip("no statfs")
	}
	const charge = 512 * MiB
	p.Charge(charge)
	held, _, _ := Room(p, all)
	if d := before - held; d < charge-2*MiB || d > charge+2*MiB {
		t.Fatalf("an unwritten charge of %d took %d off the room", charge, d)
	}
	p.SetSettled(func() int64 { return charge })
	if settled, _, _ := Room(p, all); settled < before-2*MiB {
		t.Errorf("room with the charge settled: %d, want about %d as without it", settled, before)
	}
}
