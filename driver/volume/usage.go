package volume

import (
	"context"
	"time"

	"os"

	"github.com/localdisk-csi/localdisk/driver/capacity"
	"github.com/localdisk-csi/localdisk/driver/state"
)

// Usage is what a volume itself uses of its filesystem (capacity.Usage).
type Usage = capacity.Usage

// Usage measures what the volume uses (capacity.UsageCache.Measure): a
// device volume reports nothing (its filesystem is only mounted at the CO's
// paths), once its device is found; any other once its directory is
// opened, its pool checked.
func (m *Manager) Usage(v *Volume) (Usage, error) { return m.measure(v, false) }

// measure is Usage; fresh walks even where the cache holds a recent answer
// (the health watch's measurement, which refreshes the cache).
func (m *Manager) measure(v *Volume, fresh bool) (Usage, error) {
	if v.Device() { // its filesystem is only mounted at the CO's paths
		_, err := m.DevicePath(v)
		return Usage{}, err
	}
	dir, err := m.OpenDir(v)
	if err != nil {
		return Usage{}, err
	}
	defer dir.Close()
	var project uint32
	if r := m.recs.Record(v.ID); r != nil {
		project = r.ProjectID
	}
	return m.usage.Measure(v.Pool.Pool, v.ID, project, dir, v.Pool.Open, fresh)
}

// cachedUsage is Usage without walking a tree: a directory volume whose
// pool does not enforce capacity reports what the cache holds (any age),
// or nothing measured yet. The pool and the directory are still checked.
func (m *Manager) cachedUsage(v *Volume) (Usage, error) {
	if v.Device() || !v.Pool.Kind.Directory() || v.Pool.Enforcement() != "" {
		return m.Usage(v) // no walk: a device, a disk's statfs, a quota's counts
	}
	dir, err := m.OpenDir(v)
	if err != nil {
		return Usage{}, err
	}
	dir.Close()
	return m.usage.Cached(v.ID), nil
}

// MeasureUse measures, for every healthy ROOT/PATH pool whose capacity is
// accounted but not enforced, what its volumes hold together (a fresh walk
// of each, which refreshes the cache stats and health read) and records it
// (capacity.Pool.Measured: `localdisk status`, the metrics and the alert
// rules show it). The health watch calls it. The walk takes at most
// capacity.WalkShare of one CPU; it stops between two volumes when ctx
// ends, and a pool it did not finish keeps what was last measured (never
// a partial sum).
func (m *Manager) MeasureUse(ctx context.Context) {
	if !m.measuring.CompareAndSwap(false, true) {
		return // the last round is still walking
	}
	defer m.measuring.Store(false)
	pace := capacity.NewPacer(ctx, capacity.WalkShare) // never competes with the RPCs
	for _, p := range m.order {
		if !p.Kind.Directory() {
			continue
		}
		if !p.Healthy() {
			p.Unmeasured() // not measured: nothing stale is shown
			continue
		}
		var total int64
		for _, v := range m.List() {
			if ctx.Err() != nil {
				return
			}
			if v.Pool != p {
				continue
			}
			start := time.Now()
			if u, err := m.measure(v, true); err == nil {
				total += u.Bytes
			}
			pace.Step(time.Since(start))
		}
		if ctx.Err() != nil {
			return
		}
		p.Measured(total, m.log)
	}
}

// room is what the filesystem of a ROOT or PATH pool can still take for
// new volumes (capacity.Room).
func (m *Manager) room(p *Pool) (room int64, dev uint64, ok bool) {
	return capacity.Room(p.Pool, m.capPools)
}

// reapplyLimitOf re-applies the limit of a volume already recorded (rec is
// the caller's copy of its record): start-up and expansion. A subvolume ID
// other than the recorded one is recorded anew.
func (m *Manager) reapplyLimitOf(root *os.Root, p *Pool, rec *state.Record) error {
	sub, err := p.ApplyLimit(root, rec)
	if err != nil || sub == 0 || sub == rec.Subvolume {
		return err
	}
	rec.Subvolume = sub
	return m.recs.Put(rec)
}
