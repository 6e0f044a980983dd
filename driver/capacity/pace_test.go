package capacity

import (
	"testing"
	"time"
)

func TestPacer_SleepsItsShare(t *testing.T) {
	var slept time.Duration
	p := NewPacer(0.1)
	p.sleep = func(d time.Duration) { slept += d }
	for range 1000 {
		p.Step(100 * time.Microsecond) // 100 ms of work in all
	}
	if want := 900 * time.Millisecond; slept != want {
		t.Errorf("slept %v for 100ms of work at a 10%% share, want %v", slept, want)
	}
	p = NewPacer(1)
	p.sleep = func(time.Duration) { t.Fatal("a pacer at a whole CPU slept") }
	p.Step(time.Second)
}
