package volume

import (
	"context"
	"fmt"
	"time"
)

// Watch re-checks every pool's health every interval until ctx ends (see
// CheckHealth).
func (m *Manager) Watch(ctx context.Context, every time.Duration) {
	go m.MeasureUse()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.CheckHealth()
			m.ResumeErases()
			go m.MeasureUse() // walks: never holds up the health check
		}
	}
}

// CheckHealth refreshes every pool and logs each change of health once: a
// pool that goes missing is reported unhealthy (it serves nothing new and
// nothing in it is deleted), one that comes back is taken into service and
// converged (reconverge: its half-deleted volumes are finished). An
// optional pool this node lacks (see lacking) is reported absent, at info.
// It changes what List shows only through a disk measured late, which the
// List cache notices (pool.Pool.Gen): a check that changed nothing keeps
// the cached answer.
func (m *Manager) CheckHealth() {
	for _, p := range m.order {
		healthy, err := m.refresh(p)
		absent := !healthy && m.lacking(p)
		wasHealthy, wasAbsent := p.SetHealth(healthy, absent)
		if wasHealthy == healthy && wasAbsent == absent {
			continue
		}
		log := m.log.WithField("pool", p.Name)
		switch {
		case healthy:
			log.Info("pool healthy: serving")
			m.reconverge(p) // what start-up (or the time it was down) left half-done in it
		case absent:
			log.Info(absentMessage(p))
		default:
			log.WithError(err).Warn("pool unhealthy: it serves nothing new and nothing in it is deleted")
		}
	}
}

// absentMessage says why an optional pool is absent, and what brings it.
func absentMessage(p *Pool) string {
	if p.Kind.Directory() {
		return fmt.Sprintf("pool absent (optional): %s does not exist on this node; it is taken into service when it appears", p.Spec.Path)
	}
	return fmt.Sprintf("pool absent (optional): none of its %d disks is on this node; it is taken into service when one appears", len(p.Disks))
}
