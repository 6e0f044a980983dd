package volume

import (
	"context"
	"fmt"
	"time"

	"github.com/localdisk-csi/localdisk/driver/disk"
	"github.com/localdisk-csi/localdisk/driver/failpoint"
	"github.com/localdisk-csi/localdisk/driver/pool"
	"github.com/localdisk-csi/localdisk/driver/state"
)

// eraseBudget bounds how long DeleteVolume waits for an erase before it
// answers and lets the erase finish in the background: Mesos gives every
// call 60 s.
const eraseBudget = 50 * time.Second

// errClosing is what an erase asked for after Close gets.
var errClosing = fmt.Errorf("%w: the plugin is stopping; the erase resumes at its next start", ErrBusy)

// eraseDisk starts (or joins) the erase of a `deleting` device volume, or
// the wipe of a mounted-filesystem disk (see erase), and waits for it up to
// the budget left by ctx. The disk stays claimed, so it
// is not handed out again, until the erase is recorded complete and the
// record dropped; a crash resumes it from the recorded offset.
func (m *Manager) eraseDisk(ctx context.Context, p *Pool, r *state.Record) error {
	done := m.startErase(p, r)
	budget := eraseBudget
	if dl, ok := ctx.Deadline(); ok {
		budget = min(budget, time.Until(dl)-5*time.Second)
	}
	t := time.NewTimer(max(budget, 0))
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		m.log.WithField("volume_id", r.ID).Info("erase continues in the background; the disk is handed out again once it is complete")
		return nil
	}
}

// startErase runs the erase under the Manager's eraser (disk.Eraser: one
// per disk, stopped and waited for by Close), on its own copy of r, in
// which it records its progress; the returned channel gets its result.
// Nothing starts when the volume's current record no longer asks for an
// erase (erasePending).
func (m *Manager) startErase(p *Pool, r *state.Record) <-chan error {
	r = r.Clone() // the erase's own: it records its progress in it
	return m.erases.Start(r.ID, func() bool { return m.erasePending(r.ID) },
		func(ctx context.Context) error { return m.eraseRun(ctx, p, r) })
}

// erasePending reports whether the volume's current record still asks for
// an erase (or a disk's wipe). An erase drops the record before the eraser
// forgets it, so a record that is not pending cannot become pending again
// through this erase.
func (m *Manager) erasePending(id string) bool {
	r := m.recs.Record(id)
	return r != nil && r.Phase == state.Deleting && r.Kind == state.KindMount
}

// EraseBacklog is the number of disks whose erase is not complete.
func (m *Manager) EraseBacklog() int {
	n := 0
	for _, r := range m.recs.MountRecords() {
		if r.Phase == state.Deleting && r.Erase != nil {
			n++
		}
	}
	return n
}

// erase erases the device (disk.Erase), recording progress (each step a
// new value of r, which is the erase's own copy), then frees the disk; a
// disk given by path (no erase record) is wiped (finishDelete).
// Between two steps it stops when ctx ends, its progress recorded.
func (m *Manager) erase(ctx context.Context, p *Pool, r *state.Record) error {
	if r.Erase == nil {
		return m.finishDelete(ctx, p, r)
	}
	d := p.Disk(r.ID)
	if d == nil {
		return fmt.Errorf("%w: disk %s is no longer configured", ErrUnhealthy, r.ID)
	}
	dev, _, err := m.devs.Device(p, d)
	if err != nil {
		return err
	}
	err = disk.Erase(ctx, disk.Job{Device: dev, Method: pool.Erase(r.Erase.Method), Pool: p.Name, Offset: r.Erase.Offset,
		Progress: func(off int64) error {
			r.Erase.Offset = off
			return m.recs.Put(r)
		}})
	m.ids.Forget(dev) // its signatures are gone, or some of them
	if err != nil {
		return err
	}
	m.log.WithField("volume_id", r.ID).WithField("device", dev).WithField("erase", r.Erase.Method).Info("disk erased")
	failpoint.Inject(failpoint.DeleteRemoved)
	return p.SetClaimed(r.ID, false, func() error { return m.recs.Drop(r) })
}
