package snapshot

import (
	"context"
	"fmt"
	"os"
	"path"

	"github.com/localdisk-csi/localdisk/driver/failpoint"
	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/quota"
	"github.com/localdisk-csi/localdisk/driver/state"
	"github.com/localdisk-csi/localdisk/driver/volume"
	"github.com/localdisk-csi/localdisk/driver/volume/fill"
	"github.com/localdisk-csi/localdisk/driver/volume/poolroot"
)

// source fills a new volume from a snapshot or a volume (fill.Source).
type source struct {
	m        *Manager
	id, pool string
	snapshot bool     // id is a snapshot's, else a volume's
	root     *os.Root // Fill's, for Done
	restore  Restore
}

var _ fill.Source = (*source)(nil)

// Source is the filler of a CreateVolume whose content source is snapshot
// snapshotID or (snapshotID "") volume volumeID, and the source's
// capacity: the least the new volume may have. Errors: ErrNotFound or
// volume.ErrNotFound (no such source), ErrNotReady (a snapshot still
// copying), ErrNotSupported (the source's pool cannot copy).
func (m *Manager) Source(snapshotID, volumeID string) (fill.Source, int64, error) {
	if snapshotID != "" {
		r := m.record(snapshotID)
		switch {
		case r == nil || r.Phase == Deleting:
			return nil, 0, fmt.Errorf("%w: source snapshot %s", ErrNotFound, snapshotID)
		case r.Phase == Copying:
			return nil, 0, fmt.Errorf("%w: source snapshot %s is still being copied", ErrNotReady, snapshotID)
		}
		return &source{m: m, id: r.ID, pool: r.Pool, snapshot: true}, r.Capacity, nil
	}
	v, err := m.vols.Lookup(volumeID)
	if err != nil {
		return nil, 0, fmt.Errorf("source volume: %w", err)
	}
	if d := m.method(v.Pool); d.Method == None {
		return nil, 0, fmt.Errorf("source volume %s: %w", volumeID, d.Reason)
	}
	return &source{m: m, id: v.ID, pool: v.Pool.Name}, v.Capacity, nil
}

func (s *source) ID() string   { return s.id }
func (s *source) Pool() string { return s.pool }

// srcDir is the source's directory inside the pool's data directory.
func (s *source) srcDir() string {
	if s.snapshot {
		return path.Join(layout.SnapshotsDir, s.id)
	}
	return path.Join(layout.VolumesDir, s.id)
}

// Fill writes the restore intent, then makes the volume: a writable btrfs
// snapshot of the source (then its qgroup limit), or the directory with
// its limit (project quota, qgroup) and then the copy of the source's
// tree into it. The source is locked meanwhile. On failure the directory
// and the intent are removed.
func (s *source) Fill(ctx context.Context, root *os.Root, p *poolroot.Pool, rec *state.Record) error {
	m := s.m
	var unlock func()
	if s.snapshot {
		h, err := m.locks.LockAll(ctx, idKey(s.id))
		if err != nil {
			return lockErr(err)
		}
		unlock = h.Unlock
		if r := m.record(s.id); r == nil || r.Phase != Ready {
			unlock()
			return fmt.Errorf("%w: source snapshot %s", ErrNotFound, s.id)
		}
	} else {
		var err error
		if unlock, err = m.vols.Lock(ctx, volume.IDKey(s.id)); err != nil {
			return err
		}
		if _, err := m.vols.Lookup(s.id); err != nil {
			unlock()
			return fmt.Errorf("source volume: %w", err)
		}
	}
	defer unlock()
	d := m.method(p)
	if d.Method == None {
		return fmt.Errorf("source %s: %w", s.id, d.Reason)
	}
	s.root = root
	s.restore = Restore{Version: Version, Volume: rec.ID, Pool: p.Name, Source: s.id}
	if err := m.restores.Put(rec.ID, &s.restore); err != nil {
		return err
	}
	failpoint.Inject(failpoint.RestoreIntent)
	err := s.fill(ctx, root, p, rec, d.Method)
	if err == nil {
		failpoint.Inject(failpoint.RestoreFilled)
		return nil
	}
	if rerr := removeVolumeDir(root, p, rec.ID); rerr != nil {
		m.log.WithError(rerr).WithField("volume_id", rec.ID).Warn("could not remove the directory of a failed restore; start-up will")
		return err // the intent stays: start-up removes the directory
	}
	if rerr := m.restores.Delete(rec.ID); rerr != nil {
		m.log.WithError(rerr).WithField("volume_id", rec.ID).Warn("could not drop a restore intent")
	}
	return err
}

func (s *source) fill(ctx context.Context, root *os.Root, p *poolroot.Pool, rec *state.Record, meth Method) error {
	src := s.srcDir()
	if meth == Btrfs && isSubvolume(root, src) {
		sf, err := openDir(root, src)
		if err != nil {
			return err
		}
		defer sf.Close()
		parent, err := openDir(root, layout.VolumesDir)
		if err != nil {
			return err
		}
		defer parent.Close()
		if err := quota.Snapshot(sf, parent, rec.ID, false); err != nil {
			return err
		}
		sub, err := p.ApplyLimit(root, rec)
		rec.Subvolume = sub
		return err
	}
	if err := p.MakeVolumeDir(root, rec); err != nil { // the limit is set before any data lands
		return err
	}
	if meth == Btrfs {
		meth = Reflink // btrfs clones file data too
	}
	return copyTree(ctx, root, src, path.Join(layout.VolumesDir, rec.ID), meth)
}

// Done drops the restore intent once the volume's record is written; when
// it could not be, the volume's directory is removed first.
func (s *source) Done(rec *state.Record, recorded bool) {
	log := s.m.log.WithField("volume_id", rec.ID)
	if !recorded {
		p := s.m.pool(s.pool)
		if p == nil || s.root == nil {
			return
		}
		if err := removeVolumeDir(s.root, p, rec.ID); err != nil {
			log.WithError(err).Warn("could not remove the directory of a restore whose record failed; start-up will")
			return
		}
	}
	if err := s.m.restores.Delete(rec.ID); err != nil {
		log.WithError(err).Warn("could not drop a restore intent; start-up will")
	}
}
