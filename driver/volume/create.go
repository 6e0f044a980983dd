package volume

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/localdisk-csi/localdisk/driver/failpoint"
	"github.com/localdisk-csi/localdisk/driver/keylock"
	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/pool"
	"github.com/localdisk-csi/localdisk/driver/state"
	"github.com/localdisk-csi/localdisk/driver/volume/fill"
	"github.com/localdisk-csi/localdisk/driver/volume/poolroot"
	"github.com/localdisk-csi/localdisk/driver/volume/selector"
	"github.com/localdisk-csi/localdisk/driver/volume/trash"
)

// CreateRequest is a validated CreateVolume.
type CreateRequest struct {
	Name            string
	Required, Limit int64
	Selector        Selector
	// Block asks for a raw block volume: a whole device disk.
	Block bool
	// FSType, when set, is the filesystem a device disk must be formatted
	// with (its configured fsType); other volumes take it as given.
	FSType string
	Source fill.Source // fills the volume, in the source's pool (driver/snapshot)
}

// Create makes the volume or returns the one already made under that name
// with compatible arguments (ErrAlreadyExists otherwise). It picks the first
// selected pool with room, ROOT first. Errors: pool.ErrInsufficientCapacity
// when a selected pool could hold the volume but has no room now,
// pool.ErrOutOfRange when none ever could.
//
// Order of effects, for crash safety: charge the capacity (in memory), make
// the directory (and its quota), write the `ready` record. A crash before
// the record leaves only an empty directory, removed at start-up; the
// retried call (same name, same ID) simply makes it again.
func (m *Manager) Create(ctx context.Context, req CreateRequest) (*Volume, error) {
	if err := pool.CheckRange(req.Required, req.Limit); err != nil {
		return nil, err
	}
	held, err := m.lock(ctx, NameKey(req.Name)) // then an ID: see createDir
	if err != nil {
		return nil, err
	}
	defer held.Unlock()
	if r := m.recs.ByName(req.Name); r != nil {
		return m.resume(ctx, held, r, req)
	}
	cands, err := fill.Candidates(req.Source)(fsTypeCandidates(m.candidates(req.Selector), req.FSType))
	if err != nil {
		return nil, err
	}
	if req.Block {
		cands = slices.DeleteFunc(cands, func(p *Pool) bool { return !selector.HasDevices(p) })
		if len(cands) == 0 {
			return nil, ErrNoBlockPool
		}
	}
	exhausted := len(cands) == 0
	var last error = fmt.Errorf("%w: no pool of kind %s", pool.ErrInsufficientCapacity, req.Selector.Kind)
	for _, p := range cands {
		var v *Volume
		if p.Kind.Directory() {
			v, err = m.createDir(ctx, held, p, req)
		} else {
			v, err = m.claimDisk(p, req)
		}
		switch {
		case err == nil:
			return v, nil
		case errors.Is(err, pool.ErrInsufficientCapacity), errors.Is(err, ErrUnhealthy):
			exhausted = true
		case !errors.Is(err, pool.ErrOutOfRange):
			return nil, err
		}
		last = err
	}
	if exhausted && !errors.Is(last, pool.ErrInsufficientCapacity) {
		return nil, fmt.Errorf("%w: %v", pool.ErrInsufficientCapacity, last)
	}
	return nil, last
}

// resume answers a CreateVolume for a name that already has a record (held:
// the name's lock).
func (m *Manager) resume(ctx context.Context, held *keylock.Held, r *state.Record, req CreateRequest) (*Volume, error) {
	p := m.pools[r.Pool]
	switch {
	case r.Phase == state.Deleting || p != nil && r.Phase == state.Ready && trash.Trashed(p, r.ID):
		return nil, fmt.Errorf("%w: volume %s (name %q) is being deleted", ErrBusy, r.ID, r.Name)
	case p == nil:
		return nil, fmt.Errorf("%w: volume %s: pool %q is no longer configured", ErrUnhealthy, r.ID, r.Pool)
	case !req.Selector.Match(p) || !pool.Fits(r.Capacity, req.Required, req.Limit) || r.Block != req.Block || r.Source != fill.ID(req.Source):
		return nil, fmt.Errorf("%w: name %q is volume %s of %d bytes in pool %q", ErrAlreadyExists, r.Name, r.ID, r.Capacity, r.Pool)
	case legacyCreating(r):
		return m.resumeCreating(ctx, held, p, r)
	}
	return m.volumeOf(r), nil
}

// createDir makes a ROOT or PATH volume (held: the name's lock, to which it
// adds the ID's).
func (m *Manager) createDir(ctx context.Context, held *keylock.Held, p *Pool, req CreateRequest) (*Volume, error) {
	size, err := pool.DirVolumeSize(req.Required, req.Limit)
	if err != nil {
		return nil, err
	}
	if err := p.QuotaUnmet(); err != nil {
		return nil, err
	}
	root, err := p.Open()
	if err != nil {
		return nil, err
	}
	defer root.Close()
	id := layout.DirVolumeID(p.Name, req.Name)
	unlock, err := lockMore(ctx, held, IDKey(id))
	if err != nil {
		return nil, err
	}
	defer unlock()
	if other := m.recs.Record(id); other != nil {
		return nil, fmt.Errorf("volume ID %s of name %q collides with name %q", id, req.Name, other.Name)
	}
	pid, err := p.AllocProject()
	if err != nil {
		return nil, err
	}
	rec := &state.Record{ID: id, Name: req.Name, Pool: p.Name, Kind: string(p.Kind),
		Capacity: size, Phase: state.Ready, Context: contextOf(p), ProjectID: pid, Source: fill.ID(req.Source)}
	write := func(size int64) error {
		rec.Capacity = size
		return m.makeAndRecord(ctx, root, p, rec, req.Source)
	}
	// What the filesystem can still take beyond the pool's reserve bounds
	// a volume as the pool's accounting does (a running fill's first call).
	if room, _, ok := m.room(p); ok && size <= p.Capacity() && !fill.Filling(req.Source, id) {
		if req.Required > 0 && size > room || room < pool.MiB {
			p.ReleaseProject(pid)
			return nil, fmt.Errorf("%w: pool %q: its filesystem has %d bytes free beyond its reserve", pool.ErrInsufficientCapacity, p.Name, room)
		}
		if req.Required == 0 {
			size = min(size, room) // the default fits the filesystem too
		}
	}
	if req.Required > 0 {
		err = p.Reserve(size, func() error { return write(size) })
	} else {
		// No size asked for: the default, or what the pool still holds.
		_, err = p.ReserveUpTo(size, write)
	}
	if err != nil {
		p.ReleaseProject(pid)
		return nil, fmt.Errorf("create volume %s: %w", id, err)
	}
	return m.volumeOf(rec), nil
}

// makeAndRecord makes a volume's directory (and quota), then writes its
// one `ready` record: a single durable write per create. A crash in
// between leaves an empty directory without a record, which start-up
// removes (trash.Sweeper.Orphans) and a retried call (same name, same ID)
// reuses; if the record cannot be written, the directory is removed again.
func (m *Manager) makeAndRecord(ctx context.Context, root *os.Root, p *Pool, rec *state.Record, src fill.Source) error {
	if err := fill.Make(ctx, src, root, p, rec); err != nil { // src: filled (Source.Fill)
		return err
	}
	failpoint.Inject(failpoint.CreateMkdir)
	err := m.recs.Put(rec)
	fill.Done(src, rec, err == nil)
	if err != nil && src == nil {
		if rerr := p.RemoveOrphan(root, rec.ID); rerr != nil {
			m.log.WithError(rerr).WithField("volume_id", rec.ID).Warn("could not remove the directory of a failed create; start-up will")
		}
	}
	return err
}

// claimDisk hands out the smallest free disk of a MOUNT pool that fits. Its
// existing data is kept.
func (m *Manager) claimDisk(p *Pool, req CreateRequest) (*Volume, error) {
	if p.ListUnclaimed {
		// Its free disks are listed as pre-existing volumes, which a CO
		// (Mesos) may be using: never hand one out to another volume.
		return nil, fmt.Errorf("%w: pool %q lists its free disks as pre-existing volumes: use them directly",
			pool.ErrOutOfRange, p.Name)
	}
	var rec *state.Record
	usable := poolroot.DiskUsable
	if req.Block {
		usable = poolroot.BlockUsable
	} else if req.FSType != "" {
		usable = func(d *pool.Disk) bool {
			return poolroot.DiskUsable(d) && (!d.IsDevice() || strings.EqualFold(d.FSType, req.FSType))
		}
	}
	_, err := p.ClaimDisk(req.Required, req.Limit, usable, func(d *pool.Disk) error {
		if r := m.recs.ByDisk(p.Name, d.ID); r != nil {
			return fmt.Errorf("disk %s is held by volume %s but is not claimed", d.ID, r.ID)
		}
		rec = &state.Record{ID: layout.ClaimID(d.ID, req.Name), Name: req.Name, Pool: p.Name, Kind: string(p.Kind),
			Capacity: d.Size(), Phase: state.Ready, Context: contextOf(p), Block: req.Block}
		var err error
		if rec.Identity, err = m.devs.Identity(p, d); err != nil {
			return err
		}
		return m.recs.Put(rec)
	})
	if err != nil {
		return nil, err
	}
	return m.volumeOf(rec), nil
}
