package volume

import (
	"sync/atomic"
)

// use is what a ROOT/PATH pool's volumes hold where the pool accounts
// capacity without enforcing it (MeasureUse); -1 until measured.
type use struct{ bytes atomic.Int64 }

// Used reports what the volumes of a ROOT/PATH pool whose capacity is
// accounted, not enforced, held when last measured, and whether they were
// (elsewhere the kernel holds every volume to its capacity).
func (p *Pool) Used() (int64, bool) {
	v, ok := p.measuredUse()
	return v, ok && p.Enforcement() == ""
}

// measuredUse is what the pool's volumes held when last measured (any
// healthy ROOT/PATH pool), and whether they were.
func (p *Pool) measuredUse() (int64, bool) {
	v := p.used.bytes.Load()
	return max(v, 0), v >= 0 && p.Kind.Directory()
}

// Overused reports whether the pool's volumes together hold more than
// was allocated to them (as last measured).
func (p *Pool) Overused() bool {
	used, ok := p.Used()
	return ok && used > p.Usage(nil).Allocated
}

// MeasureUse measures, for every healthy ROOT/PATH pool whose capacity is
// accounted but not enforced, what its volumes hold together (a fresh walk
// of each, which refreshes the cache stats and health read), so that `localdisk status`, the
// metrics and the alert rules see volumes that wrote past what they were
// given before the filesystem fills; the first time a pool goes over, it
// is logged. The health watch calls it.
func (m *Manager) MeasureUse() {
	if !m.measuring.CompareAndSwap(false, true) {
		return // the last round is still walking
	}
	defer m.measuring.Store(false)
	for _, p := range m.order {
		if !p.Kind.Directory() {
			continue
		}
		if !p.Healthy() {
			p.used.bytes.Store(-1) // not measured: nothing stale is shown
			continue
		}
		var total int64
		for _, v := range m.List() {
			if v.Pool != p {
				continue
			}
			if u, err := m.measure(v, true); err == nil {
				total += u.Bytes
			}
		}
		p.used.bytes.Store(total)
		over := p.Overused()
		if over != p.overLogged.Swap(over) && over {
			m.log.WithField("pool", p.Name).Warnf("the pool's volumes hold %d bytes, more than the %d allocated to them: "+
				"capacity is accounted, not enforced here (docs/operations.md: enforce it with project quotas or btrfs qgroups)",
				total, p.Usage(nil).Allocated)
		}
	}
}
