package capacity

import (
	"github.com/sirupsen/logrus"
)

// Used reports what the volumes of a ROOT/PATH pool whose capacity is
// accounted, not enforced, held when last measured, and whether they were
// (elsewhere the kernel holds every volume to its capacity).
func (p *Pool) Used() (int64, bool) {
	v, ok := p.MeasuredUse()
	return v, ok && p.Enforcement() == ""
}

// MeasuredUse is what the pool's volumes held when last measured (any
// healthy ROOT/PATH pool), and whether they were.
func (p *Pool) MeasuredUse() (int64, bool) {
	v := p.used.Load()
	return max(v, 0), v >= 0 && p.Kind.Directory()
}

// Overused reports whether the pool's volumes together hold more than
// was allocated to them (as last measured).
func (p *Pool) Overused() bool {
	used, ok := p.Used()
	return ok && used > p.Usage(nil).Allocated
}

// Unmeasured forgets what the pool's volumes held (an unhealthy pool: not
// measured, so nothing stale is shown).
func (p *Pool) Unmeasured() { p.used.Store(-1) }

// Measured records what the pool's volumes hold together (the sum of a
// fresh measurement of each, which the volume manager's MeasureUse takes
// every health interval), so that `localdisk status`, the metrics and the
// alert rules see volumes that wrote past what they were given before the
// filesystem fills; the first time the pool goes over, it is logged.
func (p *Pool) Measured(total int64, log *logrus.Entry) {
	p.used.Store(total)
	over := p.Overused()
	if over != p.overLogged.Swap(over) && over {
		log.WithField("pool", p.Name).Warnf("the pool's volumes hold %d bytes, more than the %d allocated to them: "+
			"capacity is accounted, not enforced here (docs/operations.md: enforce it with project quotas or btrfs qgroups)",
			total, p.Usage(nil).Allocated)
	}
}
