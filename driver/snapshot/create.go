package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"time"

	"github.com/localdisk-csi/localdisk/driver/failpoint"
	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/pool"
	"github.com/localdisk-csi/localdisk/driver/quota"
	"github.com/localdisk-csi/localdisk/driver/volume"
)

// Create takes a snapshot called name of volume source, or returns the one
// of that name already taken of it (ErrAlreadyExists when it was taken of
// another volume). A btrfs snapshot is ready at once; a copy goes on in
// the background, and Create waits for it (see await).
// Errors: volume.ErrNotFound (no such source), ErrNotSupported (its pool
// cannot snapshot), pool.ErrInsufficientCapacity (the pool has no room
// for the charge, or the copy did not fit).
func (m *Manager) Create(ctx context.Context, name, source string) (*Snapshot, error) {
	// Locks are taken in one order: a snapshot's name, then volume IDs
	// (driver/volume's locks), then a snapshot's ID.
	held, err := m.locks.LockAll(ctx, nameKey(name))
	if err != nil {
		return nil, lockErr(err)
	}
	defer held.Unlock()
	if r := m.byName(name); r != nil {
		if r.Source != source {
			return nil, fmt.Errorf("%w: name %q is snapshot %s of volume %s", ErrAlreadyExists, name, r.ID, r.Source)
		}
		return m.await(ctx, r)
	}
	m.mu.Lock()
	f, failed := m.failed[name]
	delete(m.failed, name)
	m.mu.Unlock()
	if failed && f.source == source {
		return nil, f.err // answered once; the next call tries again
	}
	// The source's lock is held until its snapshot is made (btrfs) or its
	// copy is started; DeleteVolume then refuses it until the copy is done.
	unlockVol, err := m.vols.Lock(ctx, volume.IDKey(source))
	if err != nil {
		return nil, err
	}
	r, job, err := m.start(ctx, name, source, unlockVol)
	if err != nil {
		return nil, err
	}
	if job == nil {
		return r.snapshot(), nil
	}
	return m.await(ctx, r)
}

// start makes the snapshot's record and data (btrfs), or its `copying`
// record and the background copy that owns unlockVol from then on.
func (m *Manager) start(ctx context.Context, name, source string, unlockVol func()) (*Record, *copyJob, error) {
	owned := false
	defer func() {
		if !owned {
			unlockVol()
		}
	}()
	v, err := m.vols.Lookup(source)
	if err != nil {
		return nil, nil, err
	}
	p := v.Pool
	d := m.method(p)
	if d.Method == None {
		return nil, nil, fmt.Errorf("volume %s: %w", source, d.Reason)
	}
	root, err := p.Open()
	if err != nil {
		return nil, nil, err
	}
	r := &Record{ID: layout.SnapshotID(p.Name, name), Name: name, Pool: p.Name, Source: source,
		Capacity: v.Capacity, Created: time.Now().UnixNano(), Phase: Ready, Method: d.Method}
	idHeld, err := m.locks.LockAll(ctx, idKey(r.ID))
	if err != nil {
		root.Close()
		return nil, nil, lockErr(err)
	}
	if err := ensureSnapshotsDir(root); err != nil {
		root.Close()
		idHeld.Unlock()
		return nil, nil, err
	}
	if d.Method == Btrfs && isSubvolume(root, path.Join(layout.VolumesDir, source)) {
		defer root.Close()
		defer idHeld.Unlock()
		err := p.Reserve(r.Capacity, func() error { return m.snapshotBtrfs(root, r) })
		return r, nil, chargeErr(err)
	}
	if r.Method == Btrfs {
		r.Method = Reflink // a volume made before its pool had quotas is a plain directory
	}
	r.Phase = Copying
	if err := p.Reserve(r.Capacity, func() error { return m.put(r) }); err != nil {
		root.Close()
		idHeld.Unlock()
		return nil, nil, chargeErr(err)
	}
	failpoint.Inject(failpoint.SnapshotCopying)
	jctx, cancel := context.WithCancel(m.ctx)
	job := &copyJob{source: source, cancel: cancel, done: make(chan struct{})}
	m.mu.Lock()
	m.running[r.ID] = job
	m.mu.Unlock()
	// From here DeleteVolume refuses the source (Manager.copying): its lock
	// is released when start returns, so that its node operations (a pod
	// starting or stopping on it) go on during a copy of any length.
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		defer close(job.done)
		defer idHeld.Unlock()
		defer root.Close()
		defer cancel()
		m.copy(jctx, root, p, r)
	}()
	return r, job, nil
}

// snapshotBtrfs takes a read-only btrfs snapshot of the volume and writes
// its `ready` record (one durable write); if the record cannot be written
// the snapshot is deleted again. A crash in between leaves a snapshot
// without a record, which start-up removes.
func (m *Manager) snapshotBtrfs(root *os.Root, r *Record) error {
	src, err := openDir(root, path.Join(layout.VolumesDir, r.Source))
	if err != nil {
		return err
	}
	defer src.Close()
	parent, err := openDir(root, layout.SnapshotsDir)
	if err != nil {
		return err
	}
	defer parent.Close()
	if err := quota.Snapshot(src, parent, r.ID, true); err != nil {
		return err
	}
	failpoint.Inject(failpoint.SnapshotData)
	if err := m.put(r); err != nil {
		if rerr := removeData(root, layout.SnapshotsDir, r.ID); rerr != nil {
			m.log.WithError(rerr).WithField("snapshot_id", r.ID).Warn("could not remove the data of a failed snapshot; start-up will")
		}
		return err
	}
	return nil
}

// copy is the background copy of a `copying` snapshot: the tree, then the
// `ready` record. A copy that fails is removed, its record dropped and its
// charge released; the next Create of its name answers the failure.
func (m *Manager) copy(ctx context.Context, root *os.Root, p *volume.Pool, r *Record) {
	if snapshotHook != nil {
		snapshotHook(ctx)
	}
	dst := path.Join(layout.SnapshotsDir, r.ID)
	err := root.Mkdir(dst, 0o700)
	if errors.Is(err, os.ErrExist) { // a half copy of an earlier run
		if err = removeData(root, layout.SnapshotsDir, r.ID); err == nil {
			err = root.Mkdir(dst, 0o700)
		}
	}
	if err == nil {
		err = copyTree(ctx, root, path.Join(layout.VolumesDir, r.Source), dst, r.Method)
	}
	if err == nil {
		failpoint.Inject(failpoint.SnapshotData)
		ready := *r
		ready.Phase = Ready
		err = m.put(&ready)
	}
	m.mu.Lock()
	delete(m.running, r.ID)
	m.mu.Unlock()
	if err == nil {
		return
	}
	log := m.log.WithField("snapshot_id", r.ID).WithError(err)
	if m.ctx.Err() != nil {
		log.Info("snapshot copy stopped by shutdown; start-up removes it")
		return
	}
	log.Warn("snapshot copy failed; removed")
	if rerr := removeData(root, layout.SnapshotsDir, r.ID); rerr != nil {
		log.WithError(rerr).Warn("could not remove the data of a failed snapshot; start-up will")
		return // the `copying` record stays: start-up removes both
	}
	if rerr := p.Release(r.Capacity, func() error { return m.drop(r) }); rerr != nil {
		log.WithError(rerr).Warn("could not drop the record of a failed snapshot; start-up will")
		return
	}
	if ctx.Err() != nil {
		return // cancelled by its DeleteSnapshot: nothing to answer
	}
	m.mu.Lock()
	m.failed[r.Name] = failure{source: r.Source, err: fmt.Errorf("snapshot %s: copy failed: %w", r.ID, err)}
	m.mu.Unlock()
}

// snapshotHook, when a test sets it, runs before each background copy of
// a snapshot.
var snapshotHook func(ctx context.Context)

// await waits for snapshot r's copy, then answers the snapshot, or the
// copy's failure. A copy is cut only when it is done: "CreateSnapshot is a
// synchronous call and it MUST block until the snapshot is cut" (spec.md,
// CreateSnapshot), so a copy that outlasts ctx answers ctx's error
// (DEADLINE_EXCEEDED) and goes on; the CO's repeated call answers it.
func (m *Manager) await(ctx context.Context, r *Record) (*Snapshot, error) {
	m.mu.Lock()
	job := m.running[r.ID]
	m.mu.Unlock()
	if job != nil {
		select {
		case <-job.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("snapshot %s is still being copied; it goes on: %w", r.ID, ctx.Err())
		}
	}
	if now := m.record(r.ID); now != nil {
		return now.snapshot(), nil
	}
	m.mu.Lock()
	f, ok := m.failed[r.Name]
	delete(m.failed, r.Name)
	m.mu.Unlock()
	if ok {
		return nil, f.err
	}
	return nil, fmt.Errorf("%w: snapshot %s vanished", volume.ErrBusy, r.ID)
}

// chargeErr: a snapshot the pool cannot hold is "Not enough resources to
// create snapshot | 8 RESOURCE_EXHAUSTED" (spec.md, CreateSnapshot
// errors), never OUT_OF_RANGE, which CreateSnapshot has no row for.
func chargeErr(err error) error {
	if errors.Is(err, pool.ErrOutOfRange) {
		return fmt.Errorf("%w: %v", pool.ErrInsufficientCapacity, err)
	}
	return err
}

// Delete removes snapshot id and its data; an unknown ID is not an error.
// A copy still running is cancelled first. Order: record `deleting`,
// remove the data, drop the record and release the charge.
func (m *Manager) Delete(ctx context.Context, id string) error {
	m.mu.Lock()
	if job := m.running[id]; job != nil {
		job.cancel()
	}
	m.mu.Unlock()
	held, err := m.locks.LockAll(ctx, idKey(id))
	if err != nil {
		return lockErr(err)
	}
	defer held.Unlock()
	r := m.record(id)
	if r == nil {
		return nil
	}
	p := m.pool(r.Pool)
	if p == nil {
		return fmt.Errorf("%w: snapshot %s: pool %q is no longer configured", volume.ErrUnhealthy, id, r.Pool)
	}
	root, err := p.Open()
	if err != nil {
		return err
	}
	defer root.Close()
	return m.finishDelete(root, p, r)
}

// finishDelete is Delete's effects from the `deleting` record on.
func (m *Manager) finishDelete(root *os.Root, p *volume.Pool, r *Record) error {
	if r.Phase != Deleting {
		r.Phase = Deleting
		if err := m.put(r); err != nil {
			return err
		}
		failpoint.Inject(failpoint.SnapshotDeleteMarked)
	}
	if err := removeData(root, layout.SnapshotsDir, r.ID); err != nil {
		return fmt.Errorf("delete snapshot %s: %w", r.ID, err)
	}
	failpoint.Inject(failpoint.SnapshotDeleteRemoved)
	return p.Release(r.Capacity, func() error { return m.drop(r) })
}
