package disk

import (
	"context"
	"sync"

	"github.com/sirupsen/logrus"
)

// Eraser owns the background erases (and wipes): at most one per disk,
// each under its context, which Close cancels before it waits for them all
// (its WaitGroup). An erase stopped that way, like one a crash stopped,
// resumes at the next start from its record.
type Eraser struct {
	mu      sync.Mutex
	running map[string]*result // volume ID -> the running erase's result
	closed  bool               // no erase starts any more
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	log     *logrus.Entry
	// closing is what an erase asked for after Close gets.
	closing error
}

// NewEraser makes the owner of the erases; closing is the error an erase
// asked for after Close gets.
func NewEraser(log *logrus.Entry, closing error) *Eraser {
	e := &Eraser{running: map[string]*result{}, log: log, closing: closing}
	e.ctx, e.cancel = context.WithCancel(context.Background())
	return e
}

// Context is the erases' context: it ends when Close is called (start-up
// runs the wipes it finishes under it too).
func (e *Eraser) Context() context.Context { return e.ctx }

// Start runs erase for the volume id in its own goroutine, owned by the
// eraser, or joins the one running for id; the returned channel gets its
// result (and is closed). pending is asked under the eraser's lock, before
// an erase starts: false (the volume's record no longer asks for an erase:
// erased and dropped since the caller read it, its disk perhaps serving a
// new volume) starts nothing. The caller drops the record of a finished
// erase before erase returns, so a record that is not pending cannot become
// pending again through this erase.
func (e *Eraser) Start(id string, pending func() bool, erase func(ctx context.Context) error) <-chan error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		done := make(chan error, 1)
		done <- e.closing
		close(done)
		return done
	}
	if res, ok := e.running[id]; ok {
		return res.wait()
	}
	if !pending() {
		done := make(chan error, 1)
		close(done)
		return done
	}
	res := &result{done: make(chan struct{})}
	e.running[id] = res
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		err := erase(e.ctx)
		if err != nil && e.ctx.Err() != nil {
			e.log.WithError(err).WithField("volume_id", id).Info("erase stopped by shutdown; it resumes at the next start")
		} else if err != nil {
			e.log.WithError(err).WithField("volume_id", id).Error("erase failed; retried by the next health check, DeleteVolume or a restart")
		}
		e.mu.Lock()
		delete(e.running, id)
		e.mu.Unlock()
		res.err = err
		close(res.done)
	}()
	return res.wait()
}

// Close stops every erase (they resume at the next start) and waits for
// them to return; none starts afterwards.
func (e *Eraser) Close() {
	e.mu.Lock()
	e.closed = true
	e.mu.Unlock()
	e.cancel()
	e.wg.Wait()
}

// result is an erase's outcome, which every caller that started or joined
// it gets: err is set before done is closed.
type result struct {
	done chan struct{}
	err  error
}

// wait relays the result to a new channel (one per waiter: a channel of
// its own, so that each gets the error, not only the first to read it).
func (r *result) wait() <-chan error {
	out := make(chan error, 1)
	go func() {
		<-r.done
		out <- r.err
		close(out)
	}()
	return out
}
