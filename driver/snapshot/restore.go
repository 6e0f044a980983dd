package snapshot

import (
	"context"
	"fmt"
	"os"
	"path"
	"time"

	"golang.org/x/sys/unix"

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

// Filling reports that a restore of volume id is still copying.
func (s *source) Filling(id string) bool {
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	return s.m.restoring[id] != nil
}

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
// tree into it. A copy runs in the background, holding the source's lock:
// when ctx ends first Fill returns ctx's error and the copy goes on, and
// the replayed CreateVolume (same name, same volume ID) waits for it. On
// failure the directory and the intent are removed.
func (s *source) Fill(ctx context.Context, root *os.Root, p *poolroot.Pool, rec *state.Record) error {
	m := s.m
	m.mu.Lock()
	job := m.restoring[rec.ID]
	m.mu.Unlock()
	if job != nil { // an earlier call's copy, whose caller gave up
		if job.source != s.id {
			return fmt.Errorf("%w: volume %s is being filled from %s", volume.ErrBusy, rec.ID, job.source)
		}
		s.root = root
		return s.await(ctx, root, p, rec, job)
	}
	unlock, err := s.lockSource(ctx)
	if err != nil {
		return err
	}
	owned := false
	defer func() {
		if !owned {
			unlock()
		}
	}()
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
	src := s.srcDir()
	snapped := d.Method == Btrfs && isSubvolume(root, src)
	if snapped {
		err = s.snapshotBtrfs(root, p, rec)
	} else {
		err = p.MakeVolumeDir(root, rec) // the limit is set before any data lands
	}
	if err != nil {
		s.undo(root, p, rec.ID)
		return err
	}
	if snapped {
		failpoint.Inject(failpoint.RestoreFilled)
		return nil
	}
	meth := d.Method
	if meth == Btrfs {
		meth = Reflink // btrfs clones file data too
	}
	jroot, err := p.Open() // the copy's own: root is closed when the create returns
	if err != nil {
		s.undo(root, p, rec.ID)
		return err
	}
	job = &restoreJob{source: s.id, pool: p.Name, project: rec.ProjectID, subvolume: rec.Subvolume, done: make(chan struct{})}
	m.mu.Lock()
	m.restoring[rec.ID] = job
	m.mu.Unlock()
	if !s.snapshot { // Delete refuses the source volume while it is copied (Manager.copying); its node operations go on
		unlock()
		unlock = func() {}
	}
	owned = true
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer jroot.Close()
		if restoreHook != nil {
			restoreHook(m.ctx)
		}
		job.err = copyTree(m.ctx, jroot, src, path.Join(layout.VolumesDir, rec.ID), meth)
		unlock()
		close(job.done)
		m.reapLater(rec.ID, job)
	}()
	return s.await(ctx, root, p, rec, job)
}

// restoreHook, when a test sets it, runs before each background copy of
// a restore.
var restoreHook func(ctx context.Context)

// restoreJob is a restore's background copy.
type restoreJob struct {
	source    string
	pool      string
	project   uint32 // the project ID the directory was made with
	subvolume uint64 // the btrfs subvolume it was made as (0: none)
	done      chan struct{}
	err       error // once done is closed
}

// finished reports that the copy is done.
func (j *restoreJob) finished() bool {
	select {
	case <-j.done:
		return true
	default:
		return false
	}
}

// unclaimedRestore is how long a finished copy whose caller gave up waits
// for the replayed CreateVolume before it is removed.
var unclaimedRestore = 10 * time.Minute

// lockSource locks the source against its delete (a snapshot) or its
// delete and changes (a volume).
func (s *source) lockSource(ctx context.Context) (func(), error) {
	m := s.m
	if s.snapshot {
		h, err := m.locks.LockAll(ctx, idKey(s.id))
		if err != nil {
			return nil, lockErr(err)
		}
		if r := m.record(s.id); r == nil || r.Phase != Ready {
			h.Unlock()
			return nil, fmt.Errorf("%w: source snapshot %s", ErrNotFound, s.id)
		}
		return h.Unlock, nil
	}
	unlock, err := m.vols.Lock(ctx, volume.IDKey(s.id))
	if err != nil {
		return nil, err
	}
	if _, err := m.vols.Lookup(s.id); err != nil {
		unlock()
		return nil, fmt.Errorf("source volume: %w", err)
	}
	return unlock, nil
}

// await waits for a restore's copy or ctx. Done: the volume's directory
// takes the project ID it was made with (the one given to this call is
// released) and its limit again; a failed copy is removed.
func (s *source) await(ctx context.Context, root *os.Root, p *poolroot.Pool, rec *state.Record, job *restoreJob) error {
	select {
	case <-job.done:
	case <-ctx.Done():
		return fmt.Errorf("volume %s is still being filled; it goes on: %w", rec.ID, ctx.Err())
	}
	s.m.mu.Lock()
	delete(s.m.restoring, rec.ID)
	s.m.mu.Unlock()
	if job.err != nil {
		s.undo(root, p, rec.ID)
		return job.err
	}
	if rec.ProjectID != job.project {
		p.ReleaseProject(rec.ProjectID)
		rec.ProjectID = job.project
	}
	// A replayed call's record is new: the directory is the first call's
	// (its project ID above, its btrfs subvolume here).
	rec.Subvolume = job.subvolume
	err := overLimit(root, rec)
	if err == nil {
		var sub uint64
		if sub, err = p.ApplyLimit(root, rec); sub != 0 {
			rec.Subvolume = sub
		}
	}
	if err != nil {
		s.undo(root, p, rec.ID)
		return spaceErr(err)
	}
	failpoint.Inject(failpoint.RestoreFilled)
	return nil
}

// overLimit fails with EDQUOT when a volume that is a btrfs subvolume
// holds more than its capacity after a copy: btrfs does not hold cloned
// extents (reflink) to the qgroup limit set before the copy, it only
// counts them.
func overLimit(root *os.Root, rec *state.Record) error {
	if rec.Subvolume == 0 {
		return nil
	}
	f, err := openDir(root, path.Join(layout.VolumesDir, rec.ID))
	if err != nil {
		return err
	}
	defer f.Close()
	u, err := quota.QgroupUsage(f, rec.Subvolume)
	if err != nil {
		return err
	}
	if int64(u.Bytes) > rec.Capacity {
		return fmt.Errorf("volume %s holds %d bytes after the copy, more than its %d: %w", rec.ID, u.Bytes, rec.Capacity, unix.EDQUOT)
	}
	return nil
}

// reapLater removes a finished restore copy that no CreateVolume claimed
// within unclaimedRestore (under the volume's lock, and only while it has
// no record); start-up does the same after a restart.
func (m *Manager) reapLater(id string, job *restoreJob) {
	select {
	case <-m.ctx.Done():
		return
	case <-time.After(unclaimedRestore):
	}
	unlock, err := m.vols.Lock(m.ctx, volume.IDKey(id))
	if err != nil {
		return
	}
	defer unlock()
	m.mu.Lock()
	mine := m.restoring[id] == job
	if mine {
		delete(m.restoring, id)
	}
	m.mu.Unlock()
	if !mine || m.hasVolume(id) {
		return
	}
	m.removeRestore(job.pool, id)
}

// hasVolume reports whether volume id has a record.
func (m *Manager) hasVolume(id string) bool {
	for _, r := range m.vols.Records() {
		if r.ID == id {
			return true
		}
	}
	return false
}

// removeRestore removes the directory of a restore whose volume has no
// record, then its intent.
func (m *Manager) removeRestore(poolName, id string) error {
	p := m.pool(poolName)
	if p == nil || !p.Healthy() {
		return fmt.Errorf("%w: pool %q is not healthy", volume.ErrUnhealthy, poolName)
	}
	root, err := p.Open()
	if err != nil {
		return err
	}
	defer root.Close()
	if err := removeVolumeDir(root, p, id); err != nil {
		return err
	}
	return m.restores.Delete(id)
}

// snapshotBtrfs makes the volume a writable snapshot of the source and
// sets its qgroup limit.
func (s *source) snapshotBtrfs(root *os.Root, p *poolroot.Pool, rec *state.Record) error {
	sf, err := openDir(root, s.srcDir())
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

// undo removes a failed fill's directory, then its intent (kept, for
// start-up, when the directory cannot be removed).
func (s *source) undo(root *os.Root, p *poolroot.Pool, id string) {
	log := s.m.log.WithField("volume_id", id)
	if err := removeVolumeDir(root, p, id); err != nil {
		log.WithError(err).Warn("could not remove the directory of a failed restore; start-up will")
		return
	}
	if err := s.m.restores.Delete(id); err != nil {
		log.WithError(err).Warn("could not drop a restore intent")
	}
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
