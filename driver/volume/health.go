package volume

import (
	"context"
	"sync"
	"time"
)

// Watch re-checks every pool's health every interval until ctx ends (see
// CheckHealth), and measures the pools' use (MeasureUse) beside it. It
// returns once nothing it started runs: a walk in flight stops at its next
// volume when ctx ends, so the state it reads is never closed under it.
func (m *Manager) Watch(ctx context.Context, every time.Duration) {
	var walks sync.WaitGroup
	defer walks.Wait()
	measure := func() { walks.Go(func() { m.MeasureUse(ctx) }) } // walks never hold up the health check
	measure()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.CheckHealth()
			m.ResumeErases()
			measure()
		}
	}
}

// CheckHealth refreshes every pool and logs each change of health once: a
// pool that goes missing is reported unhealthy (it serves nothing new and
// nothing in it is deleted), one that comes back is taken into service and
// converged (reconverge: its half-deleted volumes are finished). An
// optional pool this node lacks (see lacking) is reported absent, at info
// (poolroot.Pool.CheckHealth).
// It changes what List shows only through a disk measured late, which the
// List cache notices (pool.Pool.Gen): a check that changed nothing keeps
// the cached answer.
func (m *Manager) CheckHealth() {
	for _, p := range m.order {
		if p.CheckHealth(func() (bool, error) { return m.refresh(p) }, func() bool { return m.lacking(p) }, m.log) {
			m.reconverge(p) // what start-up (or the time it was down) left half-done in it
		}
	}
}
