package snapshot

import (
	"io/fs"

	"github.com/sirupsen/logrus"

	"github.com/localdisk-csi/localdisk/driver/layout"
)

// converge finishes what a crash left half-done (before any RPC): a
// restore intent whose volume has a record is dropped, one whose volume
// has none has its directory removed; a `copying` snapshot is removed, a
// `deleting` one deleted; data under snapshots/ that no record owns is
// removed. What lies in an unhealthy pool is left for the next start.
func (m *Manager) converge(intents []*Restore) {
	known := map[string]bool{}
	for _, r := range m.vols.Records() {
		known[r.ID] = true
	}
	for _, in := range intents {
		log := m.log.WithFields(logrus.Fields{"volume_id": in.Volume, "pool": in.Pool})
		if !known[in.Volume] {
			if err := m.removeRestore(in.Pool, in.Volume); err != nil {
				log.WithError(err).Warn("could not remove a half-done restore: left for the next start")
				continue
			}
			log.Info("removed a half-done restore")
			continue
		}
		if err := m.restores.Delete(in.Volume); err != nil {
			log.WithError(err).Warn("could not drop a restore intent")
		}
	}
	m.mu.Lock()
	var recs []*Record
	for _, r := range m.byID {
		c := *r
		recs = append(recs, &c)
	}
	m.mu.Unlock()
	for _, r := range recs {
		if r.Phase == Ready {
			continue
		}
		log := m.log.WithFields(logrus.Fields{"snapshot_id": r.ID, "pool": r.Pool, "phase": r.Phase})
		p := m.pool(r.Pool)
		if p == nil || !p.Healthy() {
			log.Warn("half-done snapshot in a pool that is not healthy: left for the next start (never listed as ready)")
			continue
		}
		root, err := p.Open()
		if err == nil {
			err = m.finishDelete(root, p, r) // a half copy is removed like a delete
			root.Close()
		}
		if err != nil {
			log.WithError(err).Warn("could not converge a half-done snapshot")
		} else {
			log.Info("removed a half-done snapshot")
		}
	}
	for _, p := range m.vols.Pools() {
		if !p.Kind.Directory() || !p.Healthy() {
			continue
		}
		root, err := p.Open()
		if err != nil {
			continue
		}
		entries, _ := fs.ReadDir(root.FS(), layout.SnapshotsDir)
		for _, e := range entries {
			if m.record(e.Name()) != nil {
				continue
			}
			if err := removeData(root, layout.SnapshotsDir, e.Name()); err != nil {
				m.log.WithError(err).WithField("path", layout.PoolSnapshotsDir(p.Dir)+"/"+e.Name()).Warn("could not remove snapshot data no record owns")
			} else {
				m.log.WithField("path", layout.PoolSnapshotsDir(p.Dir)+"/"+e.Name()).Info("removed snapshot data no record owns")
			}
		}
		root.Close()
	}
}
