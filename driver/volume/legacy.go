package volume

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"syscall"

	"github.com/localdisk-csi/localdisk/driver/failpoint"
	"github.com/localdisk-csi/localdisk/driver/keylock"
	"github.com/localdisk-csi/localdisk/driver/state"
)

// The legacy phase `creating`, fenced in this file (TestLegacy_Fenced: no
// other file names state.Creating). Versions before the single-write
// create recorded it first (capacity reserved, the directory perhaps not
// made yet), then `ready`; nothing writes it any more. A record left in it
// by a crash under such a version is settled by start-up (converge calls
// convergeCreating): a MOUNT claim becomes `ready` (it has nothing to
// make), a directory volume is rolled back (its directory was never handed
// out, so it is empty) or, if its directory holds data, made `ready`. One
// that start-up could not settle (its pool unhealthy then) is busy to
// every operation but a CreateVolume of its name, which finishes it
// (resumeCreating), and DeleteVolume.

// legacyCreating reports whether r is in the legacy phase `creating`.
func legacyCreating(r *state.Record) bool { return r.Phase == state.Creating }

// convergeCreating settles a `creating` record at start-up.
func (m *Manager) convergeCreating(p *Pool, r *state.Record) error {
	if !p.Kind.Directory() { // a MOUNT claim has nothing to make
		ready := *r
		ready.Phase = state.Ready
		return m.recs.Put(&ready)
	}
	return m.rollbackCreate(p, r)
}

// resumeCreating finishes a `creating` record for a CreateVolume of its
// name (held: the name's lock, to which it adds the ID's).
func (m *Manager) resumeCreating(ctx context.Context, held *keylock.Held, p *Pool, r *state.Record) (*Volume, error) {
	unlock, err := lockMore(ctx, held, IDKey(r.ID))
	if err != nil {
		return nil, err
	}
	defer unlock()
	root, err := p.Open()
	if err != nil {
		return nil, err
	}
	defer root.Close()
	return m.finishCreate(root, p, r)
}

// rollbackCreate undoes a `creating` record: its directory was never handed
// out, so it is empty. A non-empty one is kept and promoted instead.
func (m *Manager) rollbackCreate(p *Pool, r *state.Record) error {
	root, err := p.Open()
	if err != nil {
		return err
	}
	defer root.Close()
	err = root.Remove(path.Join(volumesDir, r.ID))
	if errors.Is(err, syscall.ENOTEMPTY) || errors.Is(err, syscall.EEXIST) {
		_, err = m.finishCreate(root, p, r)
		return err
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := p.Release(r.Capacity, func() error { return m.recs.Drop(r) }); err != nil {
		return err
	}
	p.ReleaseProject(r.ProjectID)
	return nil
}

// finishCreate makes the directory of a `creating` record and marks it
// ready; if the directory cannot be made, the reservation is rolled back.
func (m *Manager) finishCreate(root *os.Root, p *Pool, rec *state.Record) (*Volume, error) {
	ready := *rec
	if err := p.MakeVolumeDir(root, &ready); err != nil {
		err = fmt.Errorf("create volume %s: %w", rec.ID, err)
		if rerr := p.Release(rec.Capacity, func() error { return m.recs.Drop(rec) }); rerr != nil {
			m.log.WithError(rerr).WithField("volume_id", rec.ID).Error("rollback of failed create")
		} else {
			p.ReleaseProject(rec.ProjectID)
		}
		return nil, err
	}
	failpoint.Inject(failpoint.CreateMkdir)
	ready.Phase = state.Ready
	if err := m.recs.Put(&ready); err != nil {
		return nil, err // the `creating` record stays; a retry finishes
	}
	return m.volumeOf(&ready), nil
}
