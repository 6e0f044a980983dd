package volume

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"time"

	"github.com/sirupsen/logrus"
	"golang.org/x/sys/unix"

	"github.com/localdisk-csi/localdisk/driver/failpoint"
	"github.com/localdisk-csi/localdisk/driver/pool"
	"github.com/localdisk-csi/localdisk/driver/state"
)

// eraseChunk is how much of a device is zeroed between two progress records.
const eraseChunk = 1 << 30

// eraseBudget bounds how long DeleteVolume waits for an erase before it
// answers and lets the erase finish in the background: Mesos gives every
// call 60 s.
const eraseBudget = 50 * time.Second

// eraser owns the background erases (and wipes): at most one per disk,
// each under ctx, which Close cancels before it waits for them all (wg).
// An erase stopped that way, like one a crash stopped, resumes at the next
// start from its record.
type eraser struct {
	mu      sync.Mutex
	running map[string]chan error // disk ID -> result of the running erase
	closed  bool                  // no erase starts any more
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	// run is the erase itself (Manager.erase; tests replace it).
	run func(ctx context.Context, p *Pool, r *state.Record) error
}

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

// startErase runs the erase in its own goroutine, owned by the eraser; the
// returned channel gets its result (and is closed), also for callers that
// join a running erase.
func (m *Manager) startErase(p *Pool, r *state.Record) <-chan error {
	e := &m.erases
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		done := make(chan error, 1)
		done <- errClosing
		close(done)
		return done
	}
	if e.running == nil {
		e.running = map[string]chan error{}
	}
	if ch, ok := e.running[r.ID]; ok {
		return waitFor(ch)
	}
	if !m.erasePending(r.ID) {
		// Erased and dropped since the caller read r; the disk may already
		// serve a new volume, which an erase from r would destroy.
		done := make(chan error, 1)
		close(done)
		return done
	}
	ch := make(chan error, 1)
	e.running[r.ID] = ch
	r = r.Clone() // the erase's own: it records its progress in it
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		err := e.run(e.ctx, p, r)
		if err != nil && e.ctx.Err() != nil {
			m.log.WithError(err).WithField("volume_id", r.ID).Info("erase stopped by shutdown; it resumes at the next start")
		} else if err != nil {
			m.log.WithError(err).WithField("volume_id", r.ID).Error("erase failed; retried by the next health check, DeleteVolume or a restart")
		}
		e.mu.Lock()
		delete(e.running, r.ID)
		e.mu.Unlock()
		ch <- err
		close(ch)
	}()
	return waitFor(ch)
}

// closeErases stops every erase (they resume at the next start) and waits
// for them to return; none starts afterwards.
func (m *Manager) closeErases() {
	e := &m.erases
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	e.cancel()
	e.wg.Wait()
}

// erasePending reports whether the volume's current record still asks for
// an erase (or a disk's wipe). An erase drops the record before it leaves erases.running, so
// under erases.mu a record that is not pending cannot become pending again
// through this erase.
func (m *Manager) erasePending(id string) bool {
	m.mu.RLock()
	defer m.mu.RUnlock()
	r := m.records[id]
	return r != nil && r.Phase == state.Deleting && r.Kind == state.KindMount
}

// waitFor relays one result of ch to a new channel (so several waiters can
// each get it; later waiters of a finished erase get nil).
func waitFor(ch chan error) <-chan error {
	out := make(chan error, 1)
	go func() { out <- <-ch; close(out) }()
	return out
}

// EraseBacklog is the number of disks whose erase is not complete.
func (m *Manager) EraseBacklog() int {
	n := 0
	for _, r := range m.mountRecords() {
		if r.Phase == state.Deleting && r.Erase != nil {
			n++
		}
	}
	return n
}

// erase erases the device, recording progress (each step a new value of
// r, which is the erase's own copy), then frees the disk; a disk given by
// path (no erase record) is wiped (finishDelete).
// Between two steps it stops when ctx ends, its progress recorded.
func (m *Manager) erase(ctx context.Context, p *Pool, r *state.Record) error {
	if r.Erase == nil {
		return m.finishDelete(ctx, p, r)
	}
	d := p.Disk(r.ID)
	if d == nil {
		return fmt.Errorf("%w: disk %s is no longer configured", ErrUnhealthy, r.ID)
	}
	dev, _, err := m.deviceOf(p, d)
	if err != nil {
		return err
	}
	log := m.log.WithFields(logrus.Fields{"volume_id": r.ID, "device": dev, "erase": r.Erase.Method})
	f, err := os.OpenFile(dev, os.O_RDWR|unix.O_CLOEXEC|unix.O_EXCL, 0)
	if err != nil {
		return fmt.Errorf("erase %s: %w", dev, err)
	}
	defer f.Close()
	size, err := deviceSize(dev)
	if err != nil {
		return err
	}
	switch pool.Erase(r.Erase.Method) {
	case pool.EraseZero:
		for off := r.Erase.Offset; off < size; {
			if err := ctx.Err(); err != nil {
				return fmt.Errorf("zero %s: stopped at %d: %w", dev, off, err)
			}
			n := min(int64(eraseChunk), size-off)
			if err := zeroRange(f, off, n); err != nil {
				return fmt.Errorf("zero %s at %d: %w", dev, off, err)
			}
			off += n
			r.Erase.Offset = off
			if err := m.put(r); err != nil {
				return err
			}
			failpoint.Inject(failpoint.WipeStarted)
		}
	case pool.EraseDiscard:
		if err := ioctlRange(int(f.Fd()), unix.BLKDISCARD, 0, uint64(size)); errors.Is(err, unix.EOPNOTSUPP) {
			return fmt.Errorf("discard %s: %w: the device does not support discard; give pool %q erase: zero", dev, err, p.Name)
		} else if err != nil {
			return fmt.Errorf("discard %s: %w", dev, err)
		}
	}
	if err := f.Sync(); err != nil {
		return err
	}
	f.Close()
	if err := wipeSignatures(ctx, dev); err != nil {
		return err
	}
	log.Info("disk erased")
	failpoint.Inject(failpoint.DeleteRemoved)
	return p.SetClaimed(r.ID, false, func() error { return m.drop(r) })
}

// zeroRange writes zeros over [off, off+n): BLKZEROOUT where the device
// supports it, plain writes otherwise.
func zeroRange(f *os.File, off, n int64) error {
	err := ioctlRange(int(f.Fd()), unix.BLKZEROOUT, uint64(off), uint64(n))
	if err == nil || !errors.Is(err, unix.EOPNOTSUPP) && !errors.Is(err, unix.EINVAL) {
		return err
	}
	buf := make([]byte, 1<<20)
	for n > 0 {
		w, err := f.WriteAt(buf[:min(int64(len(buf)), n)], off)
		if err != nil {
			return err
		}
		off, n = off+int64(w), n-int64(w)
	}
	return nil
}

// wipeSignatures removes every filesystem and partition-table signature, so
// the next stage formats the device afresh (wipefs(8), argument vector).
func wipeSignatures(ctx context.Context, dev string) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "wipefs", "--all", "--quiet", dev).CombinedOutput(); err != nil {
		return fmt.Errorf("wipefs %s: %v: %s", dev, err, out)
	}
	return nil
}
