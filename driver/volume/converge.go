package volume

import (
	"context"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/localdisk-csi/localdisk/driver/capacity"
	"github.com/localdisk-csi/localdisk/driver/state"
	"github.com/localdisk-csi/localdisk/driver/volume/trash"
)

// converge charges the records loaded (and indexed) at start-up to their
// pools, and finishes what a crash left half-done: a `deleting` volume is
// deleted, one whose directory is already in the trash too, and a legacy
// `creating` one is settled (legacy.go). Nothing is done in an unhealthy
// pool.
func (m *Manager) converge(recs []*state.Record) {
	for _, r := range recs {
		p := m.pools[r.Pool]
		log := m.log.WithFields(logrus.Fields{"volume_id": r.ID, "pool": r.Pool})
		switch {
		case p == nil:
			log.Warn("volume's pool is no longer configured; the volume is kept but cannot be used")
		case p.Kind.Directory():
			p.Charge(r.Capacity)
		case p.Disk(r.ID) == nil:
			log.Warn("volume's disk is no longer configured; the volume is kept but cannot be used")
		default:
			_ = p.SetClaimed(r.ID, true, nil)
		}
	}
	inTrash := trash.Entries(m.order)
	for _, r := range recs {
		if p := m.pools[r.Pool]; p != nil {
			m.convergeOne(p, r, inTrash[p.Name+"/"+r.ID])
		}
	}
	for _, r := range recs {
		r = m.recs.Record(r.ID) // as converged: a delete finished above dropped it
		if r == nil {
			continue
		}
		if p := m.pools[r.Pool]; p != nil && r.Phase == state.Ready && p.Enforcement() != capacity.EnforceNone {
			m.reapplyLimit(p, r)
		}
	}
	for _, p := range m.order {
		m.sweep.Orphans(p)
		m.sweep.Trash(p)
		if u := p.Usage(nil); p.Kind.Directory() && u.Allocated > u.Capacity {
			m.log.WithFields(logrus.Fields{"pool": p.Name, "capacity": u.Capacity, "allocated": u.Allocated}).
				Warn("pool is smaller than what its volumes hold: every volume is kept and served, but no new volume fits until it grows")
		}
	}
}

// convergeOne finishes what a crash left half-done of one volume (see
// converge); a ready volume not in the trash is left alone.
func (m *Manager) convergeOne(p *Pool, r *state.Record, inTrash bool) {
	if r.Phase == state.Ready && !inTrash {
		return
	}
	log := m.log.WithFields(logrus.Fields{"volume_id": r.ID, "pool": r.Pool, "phase": r.Phase})
	var err error
	switch {
	case r.Phase == state.Deleting && r.Erase != nil:
		m.erasing.Start(p, r) // resumes from the recorded offset, in the background
	case r.Phase == state.Ready && trash.Trashed(p, r.ID):
		err = m.finishDelete(m.erasing.Eraser.Context(), p, r) // a delete interrupted after its move to the trash
	case r.Phase == state.Ready:
		return
	case r.Phase == state.Deleting:
		if err = m.checkUnused(p, r.ID); err == nil {
			err = m.finishDelete(m.erasing.Eraser.Context(), p, r)
		}
	case legacyCreating(r):
		err = m.convergeCreating(p, r)
	}
	if err != nil {
		log.WithError(err).Warn("could not converge half-done volume; left as is")
	} else {
		log.Info("converged half-done volume")
	}
}

// reconverge does for one pool, taken into service after it was unhealthy,
// what start-up could not do in it (converge): the half-done volumes are
// finished, the quotas re-applied, the orphans and the trash swept. Unlike
// start-up it runs beside the RPCs, so each volume is converged under its
// ID lock (one an RPC holds is left to that RPC and the next check).
func (m *Manager) reconverge(p *Pool) {
	inTrash := trash.Entries(m.order)
	for _, rec := range m.Records() {
		if rec.Pool != p.Name {
			continue
		}
		id := rec.ID
		m.withID(id, func() {
			r := m.recs.Record(id) // as it is now, under its lock
			if r == nil {
				return
			}
			m.convergeOne(p, r, inTrash[p.Name+"/"+id])
			if r = m.recs.Record(id); r != nil && r.Phase == state.Ready && p.Enforcement() != capacity.EnforceNone {
				m.reapplyLimit(p, r)
			}
		})
	}
	m.sweep.Orphans(p)
	m.sweep.Trash(p)
}

// withID runs f under volume id's lock, unless another operation holds it
// for more than a second.
func (m *Manager) withID(id string, f func()) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	unlock, err := m.Lock(ctx, IDKey(id))
	if err != nil {
		return
	}
	defer unlock()
	f()
}

// reapplyLimit re-verifies a volume's quota at start-up (an expansion may
// have crashed between recording the new size and raising the quota).
func (m *Manager) reapplyLimit(p *Pool, r *state.Record) {
	log := m.log.WithFields(logrus.Fields{"volume_id": r.ID, "pool": p.Name})
	if p.Enforcement() == capacity.EnforceProject && r.ProjectID == 0 || p.Enforcement() == capacity.EnforceBtrfs && r.Subvolume == 0 {
		log.Warn("volume was created before its pool enforced quotas: its capacity is not enforced")
		return
	}
	root, err := p.Open()
	if err != nil {
		return
	}
	defer root.Close()
	if err := m.reapplyLimitOf(root, p, r); err != nil {
		log.WithError(err).Warn("could not re-apply the volume's quota")
	}
}
