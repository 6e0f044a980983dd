package volume

import (
	"cmp"
	"context"
	"fmt"
	"path"

	"github.com/localdisk-csi/localdisk/driver/disk"
	"github.com/localdisk-csi/localdisk/driver/failpoint"
	"github.com/localdisk-csi/localdisk/driver/mounter"
	"github.com/localdisk-csi/localdisk/driver/pool"
	"github.com/localdisk-csi/localdisk/driver/state"
	"github.com/localdisk-csi/localdisk/driver/volume/stagemark"
	"github.com/localdisk-csi/localdisk/driver/volume/trash"
)

// Delete removes a volume and its data. An unknown ID is not an error. A
// volume still mounted anywhere is ErrInUse; one whose pool is missing is
// ErrUnhealthy, and nothing is removed.
//
// Order of effects, ROOT/PATH: move the directory into the pool's trash,
// remove the data, drop the record (the one durable write) and release the
// capacity. A crash before the drop leaves a record whose directory is in
// the trash: start-up or the retried call finishes the delete. MOUNT: record `deleting` (the disk
// stays claimed), wipe or erase it, drop the record.
func (m *Manager) Delete(ctx context.Context, id string) error {
	unlock, err := m.Lock(ctx, IDKey(id))
	if err != nil {
		return err
	}
	defer unlock()
	r := m.recs.Record(id)
	adopt := false // a free disk listed as a pre-existing volume (listUnclaimed)
	if r == nil {
		v := m.cat.Unclaimed(id)
		if v == nil {
			return nil
		}
		// Deleted like a claimed disk (Mesos DESTROY_DISK of a pre-existing
		// disk): its `deleting` record, with no name, claims it until it is
		// wiped or erased; dropping the record lists it again.
		r = &state.Record{ID: v.ID, Pool: v.Pool.Name, Kind: string(v.Pool.Kind), Capacity: v.Capacity,
			Phase: state.Ready, Context: contextOf(v.Pool)}
		adopt = true
	}
	p := m.pools[r.Pool]
	if p == nil {
		return fmt.Errorf("%w: volume %s: pool %q is no longer configured", ErrUnhealthy, id, r.Pool)
	}
	if err := p.Check(id); err != nil {
		return err
	}
	if d := p.Disk(id); d != nil && !d.IsDevice() {
		if err := m.devs.CheckMounted(id, d.Path); err != nil {
			return err // never wipe a disk that is not the volume's (finishDelete checks again)
		}
	}
	if err := m.checkUnused(p, id); err != nil {
		return err
	}
	if r.Phase != state.Deleting && !p.Kind.Directory() { // a wipe or erase can be long: resumable
		r.Phase = state.Deleting
		d := p.Disk(id)
		if d != nil && d.IsDevice() {
			r.Erase = &state.Erase{Method: string(cmp.Or(p.Erase, pool.EraseNone))}
		}
		var err error
		if adopt {
			err = p.SetClaimed(id, true, func() error {
				if r.Identity, err = m.devs.Identity(p, d); err != nil {
					return err
				}
				return m.recs.Put(r)
			})
		} else {
			err = m.recs.Put(r)
		}
		if err != nil {
			return err
		}
		failpoint.Inject(failpoint.DeleteMarked)
	}
	m.usage.Forget(id)
	if !p.Kind.Directory() {
		// A disk's wipe or erase can outlast the CO's deadline: answer
		// within it and go on in the background (erasure.Erasures.Wait), so that the
		// CO gets OK instead of retrying a delete that completes anyway; a
		// late retry of it could otherwise wipe the next volume of that
		// disk, which has the same ID.
		return m.erasing.Wait(ctx, p, r)
	}
	return m.finishDelete(ctx, p, r)
}

// checkUnused fails with ErrInUse while a copy reads the volume, or while
// the volume is mounted anywhere (its
// directory or device filesystem bind mounted, its device node bound for
// block access) or something is mounted inside its directory.
func (m *Manager) checkUnused(p *Pool, id string) error {
	if what := m.copying(id); what != "" {
		return fmt.Errorf("%w: volume %s is %s", ErrInUse, id, what)
	}
	t, err := mounter.ReadTable()
	if err != nil {
		return err
	}
	if d := p.Disk(id); d != nil && d.IsDevice() {
		v := &Volume{ID: id, Pool: p}
		for _, block := range []bool{false, true} {
			src, err := m.Source(t, v, block)
			if err != nil {
				return err
			}
			if uses := t.Uses("", src); len(uses) > 0 {
				return fmt.Errorf("%w: volume %s is mounted at %s", ErrInUse, id, uses[0].Mountpoint)
			}
		}
		return nil
	}
	if mp, ok := stagemark.Busy(t, p.VolumePath(id)); ok {
		return fmt.Errorf("%w: volume %s is mounted at %s", ErrInUse, id, mp)
	}
	if mp, ok := m.marks.InUse(t, id); ok { // its staging record or mark
		return fmt.Errorf("%w: volume %s is staged at %s", ErrInUse, id, mp)
	}
	return nil
}

// finishDelete removes the data of a `deleting` record and drops it. The
// wipe of a MOUNT disk stops between two entries when ctx ends (a
// directory volume's removal does not look at it): the record stays
// `deleting`, and start-up finishes it.
func (m *Manager) finishDelete(ctx context.Context, p *Pool, r *state.Record) error {
	if !p.Kind.Directory() {
		d := p.Disk(r.ID)
		if d == nil {
			return fmt.Errorf("%w: disk %s is no longer configured", ErrUnhealthy, r.ID)
		}
		// Checked here, where every wipe goes (DeleteVolume, its background
		// continuation and retries, start-up): another filesystem mounted in
		// the disk's place since is never wiped.
		if err := m.devs.CheckMounted(r.ID, d.Path); err != nil {
			return err
		}
		if !disk.MountRoot(d.Path) {
			return fmt.Errorf("%w: disk %s is not mounted; nothing wiped", ErrUnhealthy, d.Path)
		}
		if err := disk.Wipe(ctx, d.Path); err != nil {
			return err
		}
		if err := m.removeMark(r.ID); err != nil {
			return err
		}
		failpoint.Inject(failpoint.DeleteRemoved)
		return p.SetClaimed(r.ID, false, func() error { return m.recs.Drop(r) })
	}
	root, err := p.Open()
	if err != nil {
		return err
	}
	defer root.Close()
	trashed := path.Join(trashDir, r.ID)
	if err := trash.Move(root, r.ID); err != nil {
		return fmt.Errorf("delete volume %s: %w", r.ID, err)
	}
	failpoint.Inject(failpoint.DeleteTrashed)
	if err := p.RemoveVolumeDir(root, r, trashed); err != nil {
		return fmt.Errorf("delete volume %s: %w", r.ID, err) // the retry finds it in the trash
	}
	failpoint.Inject(failpoint.DeleteRemoved)
	if err := p.Release(r.Capacity, func() error { return m.recs.Drop(r) }); err != nil {
		return err
	}
	p.ReleaseProject(r.ProjectID)
	return nil
}
