package capacity

import (
	"context"
	"time"
)

// WalkShare is the most of one CPU that the periodic usage walk
// (volume.Manager.MeasureUse) takes: it yields between volumes so that it
// never competes with the RPCs, whatever the number of volumes (with
// 10,000 volumes a round takes about a second of CPU, spread over ten).
const WalkShare = 0.1

// Pacer spreads a background walk so that it uses at most a share of one
// CPU: after each step it is told how long the step took, and it sleeps
// whenever the work since its last sleep reaches a slice (so a walk of
// small steps sleeps a few times per second, not once per step).
type Pacer struct {
	share float64
	busy  time.Duration
	sleep func(time.Duration)
}

// pacerSlice is the work between two sleeps.
const pacerSlice = 10 * time.Millisecond

// NewPacer paces a walk to share (0 < share <= 1) of one CPU; its sleeps
// end early when ctx ends (the walk's owner is shutting down).
func NewPacer(ctx context.Context, share float64) *Pacer {
	return &Pacer{share: share, sleep: func(d time.Duration) {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}}
}

// Step counts a step that took d, sleeping when a slice of work is done.
func (p *Pacer) Step(d time.Duration) {
	if p.share >= 1 {
		return
	}
	p.busy += d
	if p.busy < pacerSlice {
		return
	}
	p.sleep(time.Duration(float64(p.busy) * (1 - p.share) / p.share))
	p.busy = 0
}
