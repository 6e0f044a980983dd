package state

import "sync"

// groupSync makes the fsyncs of one directory a group commit: a caller
// whose change to the directory (a rename, an unlink) is done calls Sync,
// which returns once an fsync that started after the call has finished.
// Concurrent callers share that fsync instead of queueing one each: with
// W workers creating and deleting volumes, a handful of fsyncs cover them
// all, and durability is exactly that of one fsync per change.
//
// A failed fsync fails every later Sync too: after a failed fsync Linux
// may report the next one clean without the lost writes being on disk, so
// nothing is claimed durable again until the plugin restarts (and reloads
// what is on disk).
type groupSync struct {
	sync func() error // the fsync

	mu      sync.Mutex
	cond    sync.Cond
	started uint64 // fsyncs started
	done    uint64 // fsyncs finished, in order (one runs at a time)
	running bool
	err     error // the first failure: sticky
}

func newGroupSync(sync func() error) *groupSync {
	g := &groupSync{sync: sync}
	g.cond.L = &g.mu
	return g
}

// Sync waits for an fsync that started after the call.
func (g *groupSync) Sync() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	want := g.started + 1 // one in flight may have started before the change
	for g.done < want && g.err == nil {
		if g.running {
			g.cond.Wait()
			continue
		}
		g.running = true
		g.started++
		g.mu.Unlock()
		err := g.sync()
		g.mu.Lock()
		g.running = false
		g.done++
		if err != nil && g.err == nil {
			g.err = err
		}
		g.cond.Broadcast()
	}
	return g.err
}

// Err is the sticky failure of an earlier fsync, nil if none: a change
// asks it first, so that it fails with nothing changed.
func (g *groupSync) Err() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.err
}
