// Package erasure erases the disks of deleted MOUNT volumes: it starts (or
// joins) the erase of a `deleting` device volume, or the wipe of a disk
// given by path, under the Manager's eraser (disk.Eraser), records its
// progress in the volume's record, frees the disk once it is complete,
// waits for it within DeleteVolume's budget, and resumes the erases left
// undone. It reads and writes the records through the index (volume/index)
// and finds the devices with devfind; the Manager (driver/volume) hands it
// the wipe of a disk given by path.
package erasure

import (
	"context"
	"fmt"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/localdisk-csi/localdisk/driver/capacity"
	"github.com/localdisk-csi/localdisk/driver/disk"
	"github.com/localdisk-csi/localdisk/driver/failpoint"
	"github.com/localdisk-csi/localdisk/driver/pool"
	"github.com/localdisk-csi/localdisk/driver/state"
	"github.com/localdisk-csi/localdisk/driver/volume/devfind"
	"github.com/localdisk-csi/localdisk/driver/volume/index"
	"github.com/localdisk-csi/localdisk/driver/volume/poolroot"
)

// budget bounds how long DeleteVolume waits for an erase before it answers
// and lets the erase finish in the background: Mesos gives every call 60 s.
const budget = 50 * time.Second

// Erasures are the erases of the disks of one Manager.
type Erasures struct {
	Log    *logrus.Entry
	Recs   *index.Index
	Devs   devfind.Finder
	IDs    *disk.Identities
	Eraser *disk.Eraser // owns the background erases
	// Wipe wipes a disk given by path (a record without an erase record)
	// and drops its record.
	Wipe func(ctx context.Context, p *poolroot.Pool, r *state.Record) error
	// Run is the erase itself (Erase; tests replace it).
	Run func(ctx context.Context, p *poolroot.Pool, r *state.Record) error
}

// Wait starts (or joins) the erase of a `deleting` device volume, or the
// wipe of a mounted-filesystem disk (see Erase), and waits for it up to the
// budget left by ctx. The disk stays claimed, so it is not handed out
// again, until the erase is recorded complete and the record dropped; a
// crash resumes it from the recorded offset.
func (e *Erasures) Wait(ctx context.Context, p *poolroot.Pool, r *state.Record) error {
	done := e.Start(p, r)
	b := budget
	if dl, ok := ctx.Deadline(); ok {
		b = min(b, time.Until(dl)-5*time.Second)
	}
	t := time.NewTimer(max(b, 0))
	defer t.Stop()
	select {
	case err := <-done:
		return err
	case <-t.C:
		e.Log.WithField("volume_id", r.ID).Info("erase continues in the background; the disk is handed out again once it is complete")
		return nil
	}
}

// Start runs the erase under the eraser (disk.Eraser: one per disk,
// stopped and waited for by its Close), on its own copy of r, in which it
// records its progress; the returned channel gets its result. Nothing
// starts when the volume's current record no longer asks for an erase
// (pending).
func (e *Erasures) Start(p *poolroot.Pool, r *state.Record) <-chan error {
	r = r.Clone() // the erase's own: it records its progress in it
	return e.Eraser.Start(r.ID, func() bool { return e.pending(r.ID) },
		func(ctx context.Context) error { return e.Run(ctx, p, r) })
}

// pending reports whether the volume's current record still asks for an
// erase (or a disk's wipe). An erase drops the record before the eraser
// forgets it, so a record that is not pending cannot become pending again
// through this erase.
func (e *Erasures) pending(id string) bool {
	r := e.Recs.Record(id)
	return r != nil && r.Phase == state.Deleting && r.Kind == state.KindMount
}

// Backlog is the number of disks whose erase is not complete.
func (e *Erasures) Backlog() int {
	n := 0
	for _, r := range e.Recs.MountRecords() {
		if r.Phase == state.Deleting && r.Erase != nil {
			n++
		}
	}
	return n
}

// Resume restarts the erase (or wipe) of every MOUNT volume left
// `deleting` whose erase is not running, in a healthy pool (of pools, by
// name): one that failed after DeleteVolume answered (the erase went on in
// the background) is retried here, since the CO that got OK never asks
// again. A running erase is joined, not doubled.
func (e *Erasures) Resume(pools map[string]*poolroot.Pool) {
	for _, r := range e.Recs.MountRecords() {
		p := pools[r.Pool]
		if r.Phase != state.Deleting || p == nil || !p.LastHealthy() {
			continue
		}
		e.Start(p, r)
	}
}

// Erase erases the device (disk.Erase), recording progress (each step a
// new value of r, which is the erase's own copy), then frees the disk; a
// disk given by path (no erase record) is wiped (Wipe). Between two steps
// it stops when ctx ends, its progress recorded.
func (e *Erasures) Erase(ctx context.Context, p *poolroot.Pool, r *state.Record) error {
	if r.Erase == nil {
		return e.Wipe(ctx, p, r)
	}
	d := p.Disk(r.ID)
	if d == nil {
		return fmt.Errorf("%w: disk %s is no longer configured", capacity.ErrUnhealthy, r.ID)
	}
	dev, _, err := e.Devs.Device(p, d)
	if err != nil {
		return err
	}
	err = disk.Erase(ctx, disk.Job{Device: dev, Method: pool.Erase(r.Erase.Method), Pool: p.Name, Offset: r.Erase.Offset,
		Progress: func(off int64) error {
			r.Erase.Offset = off
			return e.Recs.Put(r)
		}})
	e.IDs.Forget(dev) // its signatures are gone, or some of them
	if err != nil {
		return err
	}
	e.Log.WithField("volume_id", r.ID).WithField("device", dev).WithField("erase", r.Erase.Method).Info("disk erased")
	failpoint.Inject(failpoint.DeleteRemoved)
	return p.SetClaimed(r.ID, false, func() error { return e.Recs.Drop(r) })
}
