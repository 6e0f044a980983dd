package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
)

// Vol is a created volume as the CO keeps it.
type Vol struct {
	ID      string
	Context map[string]string
}

// Backend is what a cycle drives: the plugin over CSI (Plugin) or the bare
// syscalls (Limit). Each method is one step of the cycle.
type Backend interface {
	Create(ctx context.Context, name string) (Vol, error)
	Stage(ctx context.Context, v Vol, staging string) error
	Publish(ctx context.Context, v Vol, staging, target string, ro bool) error
	Unpublish(ctx context.Context, v Vol, target string) error
	Unstage(ctx context.Context, v Vol, staging string) error
	Delete(ctx context.Context, v Vol) error
}

// Config says how much load to make.
type Config struct {
	// Workers run cycles in parallel.
	Workers int
	// Duration bounds a full-cycle run: no cycle starts after it (the ones
	// in flight finish). When 0, Count cycles are run.
	Duration time.Duration
	// Count is the number of cycles (full mode, when Duration is 0) or of
	// volumes created then deleted (create-only mode).
	Count int
	// Dir is the CO's directory: staging paths go to Dir/staging/NAME and
	// targets to Dir/pods/NAME (both parents exist; the plugin creates the
	// paths themselves, as with Kubernetes).
	Dir string
	// Prefix makes volume names unique across runs.
	Prefix string
	// ReadOnly publishes read-only (the I/O step then only lists the target).
	ReadOnly bool
	// Timeout bounds each step (default 2 minutes).
	Timeout time.Duration
}

// Result is one run of one mode against one backend.
type Result struct {
	Workers int
	// Done counts cycles (or creates, or deletes) that succeeded; Failed
	// those where a step failed.
	Done, Failed int
	Elapsed      time.Duration
	Rec          *Recorder
}

// Rate is successful cycles per second.
func (r *Result) Rate() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Done) / r.Elapsed.Seconds()
}

// Add adds o, a further slice of the same measurement, to r: the rate is
// then that of both together.
func (r *Result) Add(o *Result) {
	r.Done += o.Done
	r.Failed += o.Failed
	r.Elapsed += o.Elapsed
	r.Rec.Add(o.Rec)
}

// Prepare makes the CO's directories under cfg.Dir.
func Prepare(cfg Config) error {
	for _, d := range []string{"staging", "pods"} {
		if err := os.MkdirAll(filepath.Join(cfg.Dir, d), 0o750); err != nil {
			return err
		}
	}
	return nil
}

// runner times steps into a recorder. Steps run on a context that Ctrl-C
// does not cancel, so a cycle in flight always undoes what it did.
type runner struct {
	b   Backend
	cfg Config
	rec *Recorder
	ctx context.Context
}

func newRunner(ctx context.Context, b Backend, cfg Config) *runner {
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Minute
	}
	return &runner{b: b, cfg: cfg, rec: NewRecorder(), ctx: context.WithoutCancel(ctx)}
}

func (r *runner) step(name string, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(r.ctx, r.cfg.Timeout)
	defer cancel()
	start := time.Now()
	err := f(ctx)
	r.rec.Observe(name, time.Since(start), err)
	return err
}

// parallel runs work on cfg.Workers goroutines until next reports no more
// work, and returns the elapsed time.
func parallel(workers int, next func() (int, bool), work func(int) bool) (done, failed int, elapsed time.Duration) {
	var d, f atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range max(workers, 1) {
		wg.Go(func() {
			for {
				i, ok := next()
				if !ok {
					return
				}
				if work(i) {
					d.Add(1)
				} else {
					f.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return int(d.Load()), int(f.Load()), time.Since(start)
}

// RunFull runs full cycles until cfg.Duration has passed (or cfg.Count
// cycles are done) or ctx is cancelled.
func RunFull(ctx context.Context, b Backend, cfg Config) *Result {
	r := newRunner(ctx, b, cfg)
	var seq atomic.Int64
	deadline := time.Now().Add(cfg.Duration)
	next := func() (int, bool) {
		if ctx.Err() != nil || cfg.Duration > 0 && time.Now().After(deadline) {
			return 0, false
		}
		i := int(seq.Add(1)) - 1
		return i, cfg.Duration > 0 || i < cfg.Count
	}
	done, failed, elapsed := parallel(cfg.Workers, next, func(i int) bool {
		start := time.Now()
		err := r.cycle(fmt.Sprintf("%s-%06d", cfg.Prefix, i))
		if err == nil { // a failed cycle's error is its step's, counted there
			r.rec.Observe(StepCycle, time.Since(start), nil)
		}
		return err == nil
	})
	return &Result{Workers: cfg.Workers, Done: done, Failed: failed, Elapsed: elapsed, Rec: r.rec}
}

// cycle is one volume's whole life. Whatever fails, what was done is undone
// (every undo is a timed call too), so nothing is left behind.
func (r *runner) cycle(name string) error {
	staging := filepath.Join(r.cfg.Dir, "staging", name)
	target := filepath.Join(r.cfg.Dir, "pods", name)
	var v Vol
	err := r.step(StepCreate, func(ctx context.Context) (err error) {
		v, err = r.b.Create(ctx, name)
		return err
	})
	if err != nil {
		return err
	}
	staged, published := false, false
	if err = r.step(StepStage, func(ctx context.Context) error { return r.b.Stage(ctx, v, staging) }); err == nil {
		staged = true
		err = r.step(StepPublish, func(ctx context.Context) error { return r.b.Publish(ctx, v, staging, target, r.cfg.ReadOnly) })
	}
	if err == nil {
		published = true
		err = r.step(StepIO, func(context.Context) error { return readWrite(target, name, r.cfg.ReadOnly) })
	}
	keep := func(e error) {
		if err == nil {
			err = e
		}
	}
	if published {
		keep(r.step(StepUnpublish, func(ctx context.Context) error { return r.b.Unpublish(ctx, v, target) }))
	}
	if staged {
		keep(r.step(StepUnstage, func(ctx context.Context) error { return r.b.Unstage(ctx, v, staging) }))
	}
	// The CO removes its staging directory; a failed step may have left
	// the target directory too.
	for _, p := range []string{staging, target} {
		if e := os.Remove(p); e != nil && !errors.Is(e, fs.ErrNotExist) {
			r.rec.Observe(StepCleanup, 0, e)
			keep(e)
		}
	}
	keep(r.step(StepDelete, func(ctx context.Context) error { return r.b.Delete(ctx, v) }))
	return err
}

// readWrite writes a small file through the target and reads it back (a
// read-only target is only listed).
func readWrite(target, name string, ro bool) error {
	if ro {
		_, err := os.ReadDir(target)
		return err
	}
	data := bytes.Repeat([]byte(name+"\n"), 4096/(len(name)+1))
	p := filepath.Join(target, "data")
	if err := os.WriteFile(p, data, 0o644); err != nil {
		return err
	}
	got, err := os.ReadFile(p)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, data) {
		return fmt.Errorf("read back %d bytes that differ from the %d written", len(got), len(data))
	}
	return nil
}

// RunCreateDelete creates cfg.Count volumes with cfg.Workers workers, then
// deletes them all the same way. A cancelled ctx stops the creates; the
// deletes of what was created always run.
func RunCreateDelete(ctx context.Context, b Backend, cfg Config) (create, del *Result) {
	r := newRunner(ctx, b, cfg)
	vols := make([]*Vol, cfg.Count)
	var seq atomic.Int64
	next := func(n int, stop bool) func() (int, bool) {
		return func() (int, bool) {
			i := int(seq.Add(1)) - 1
			return i, i < n && !(stop && ctx.Err() != nil)
		}
	}
	done, failed, elapsed := parallel(cfg.Workers, next(cfg.Count, true), func(i int) bool {
		var v Vol
		err := r.step(StepCreate, func(ctx context.Context) (err error) {
			v, err = b.Create(ctx, fmt.Sprintf("%s-%06d", cfg.Prefix, i))
			return err
		})
		if err == nil {
			vols[i] = &v
		}
		return err == nil
	})
	create = &Result{Workers: cfg.Workers, Done: done, Failed: failed, Elapsed: elapsed, Rec: r.rec}

	var created []Vol
	for _, v := range vols {
		if v != nil {
			created = append(created, *v)
		}
	}
	dr := newRunner(ctx, b, cfg)
	seq.Store(0)
	done, failed, elapsed = parallel(cfg.Workers, next(len(created), false), func(i int) bool {
		return dr.step(StepDelete, func(ctx context.Context) error { return b.Delete(ctx, created[i]) }) == nil
	})
	del = &Result{Workers: cfg.Workers, Done: done, Failed: failed, Elapsed: elapsed, Rec: dr.rec}
	return create, del
}
