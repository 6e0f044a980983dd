package snapshot

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/sirupsen/logrus"

	"github.com/localdisk-csi/localdisk/driver/keylock"
	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/state"
	"github.com/localdisk-csi/localdisk/driver/volume"
)

// Manager owns the snapshots' records, their locks and their background
// copies.
type Manager struct {
	log      *logrus.Entry
	vols     *volume.Manager
	recs     *state.Files // <state-dir>/snapshots
	restores *state.Files // <state-dir>/restores

	// locks: a snapshot's name, then its ID (taken after any volume lock).
	locks keylock.Locks

	mu        sync.Mutex
	byID      map[string]*Record     // the records, as last written
	methods   map[string]Method      // decided per pool, once it could be
	running   map[string]*copyJob    // background copies, by snapshot ID
	restoring map[string]*restoreJob // background copies of restores, by volume ID
	failed    map[string]failure     // the last failed copy of a name
	ctx       context.Context        // ends at Close
	cancel    context.CancelFunc
	wg        sync.WaitGroup // the background copies
}

// copyJob is a background copy: done is closed when it ends.
type copyJob struct {
	source string // the volume it reads
	cancel context.CancelFunc
	done   chan struct{}
}

type failure struct {
	source string
	err    error
}

// Lock key classes of the snapshot locks.
const (
	nameClass keylock.Class = iota + 1
	idClass
)

func nameKey(n string) keylock.Key { return keylock.Key{Class: nameClass, Name: n} }
func idKey(id string) keylock.Key  { return keylock.Key{Class: idClass, Name: id} }

// New opens the snapshots' records and the restores' intents in the state
// dir (which vols opened), charges each snapshot to its pool and converges
// what a crash left half-done (converge.go). A record that cannot be read
// stops start-up.
func New(vols *volume.Manager, stateDir string, log *logrus.Entry) (*Manager, error) {
	recs, err := state.OpenFiles(stateDir, layout.SnapshotsDir)
	if err != nil {
		return nil, err
	}
	restores, err := state.OpenFiles(stateDir, layout.RestoresDir)
	if err != nil {
		recs.Close()
		return nil, err
	}
	m := &Manager{log: log, vols: vols, recs: recs, restores: restores, byID: map[string]*Record{},
		methods: map[string]Method{}, running: map[string]*copyJob{}, restoring: map[string]*restoreJob{}, failed: map[string]failure{}}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	fail := func(err error) (*Manager, error) {
		m.Close()
		return nil, err
	}
	bad, err := recs.Load(func(id string, data []byte) error {
		r, err := decodeRecord(id, data)
		if err == nil {
			m.byID[id] = r
		}
		return err
	})
	if err == nil && len(bad) > 0 {
		err = fmt.Errorf("refusing to start over unreadable snapshot records: %w", errors.Join(loadErrs(bad)...))
	}
	if err != nil {
		return fail(err)
	}
	var intents []*Restore
	bad, err = restores.Load(func(id string, data []byte) error {
		r, err := decodeRestore(id, data)
		if err == nil {
			intents = append(intents, r)
		}
		return err
	})
	if err == nil && len(bad) > 0 {
		err = fmt.Errorf("refusing to start over unreadable restore intents: %w", errors.Join(loadErrs(bad)...))
	}
	if err != nil {
		return fail(err)
	}
	for _, r := range m.byID {
		if p := m.pool(r.Pool); p != nil && p.Kind.Directory() {
			p.Charge(r.Capacity)
		}
	}
	vols.SetCopying(m.copying)
	for _, p := range vols.Pools() {
		if p.Kind.Directory() {
			name := p.Name
			p.SetSettled(func() int64 { return m.settled(name) })
		}
	}
	m.converge(intents)
	return m, nil
}

func loadErrs(bad []*state.LoadError) []error {
	out := make([]error, len(bad))
	for i, b := range bad {
		out[i] = b
	}
	return out
}

// Close cancels the background copies and waits for them (a snapshot
// left `copying` is removed at the next start), then releases the state.
func (m *Manager) Close() error {
	m.cancel()
	m.wg.Wait()
	m.restores.Close()
	return m.recs.Close()
}

// pool is the configured pool of that name, nil if none.
func (m *Manager) pool(name string) *volume.Pool {
	for _, p := range m.vols.Pools() {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// copying names a copy that reads volume id: a snapshot's, or a clone's
// ("" for none). DeleteVolume refuses the volume meanwhile (its lock is
// not held during the copy, so that the volume's node operations go on).
func (m *Manager) copying(id string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	for sid, j := range m.running {
		if j.source == id {
			return "being copied into snapshot " + sid
		}
	}
	for vid, j := range m.restoring {
		if j.source == id && !j.finished() {
			return "being cloned into volume " + vid
		}
	}
	return ""
}

// settled is what pool's full-copy snapshots whose data is complete
// (ready, or being deleted) are charged: written once, never more
// (capacity.Pool.SetSettled). A copy still running may write up to its
// charge; a btrfs or reflink snapshot shares its source's data and comes
// to hold up to its charge as the source is overwritten: neither is.
func (m *Manager) settled(pool string) int64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	var n int64
	for _, r := range m.byID {
		if r.Pool == pool && r.Phase != Copying && r.Method == Copy {
			n += r.Capacity
		}
	}
	return n
}

// record is a copy of snapshot id's record, nil if none.
func (m *Manager) record(id string) *Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	if r := m.byID[id]; r != nil {
		c := *r
		return &c
	}
	return nil
}

func (m *Manager) byName(name string) *Record {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, r := range m.byID {
		if r.Name == name {
			c := *r
			return &c
		}
	}
	return nil
}

// put writes r durably, then indexes a copy.
func (m *Manager) put(r *Record) error {
	r.Version = Version
	if err := m.recs.Put(r.ID, r); err != nil {
		return err
	}
	c := *r
	m.mu.Lock()
	m.byID[r.ID] = &c
	m.mu.Unlock()
	return nil
}

// drop removes r's record durably, then from the index.
func (m *Manager) drop(r *Record) error {
	if err := m.recs.Delete(r.ID); err != nil {
		return err
	}
	m.mu.Lock()
	delete(m.byID, r.ID)
	m.mu.Unlock()
	return nil
}

// Get is snapshot id, ErrNotFound if there is none (or it is still being
// copied, or being deleted).
func (m *Manager) Get(id string) (*Snapshot, error) {
	r := m.record(id)
	if r == nil || r.Phase != Ready { // a copy is not cut until it is done
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	return r.snapshot(), nil
}

// List is every ready snapshot, in ID order.
func (m *Manager) List() []*Snapshot {
	m.mu.Lock()
	out := make([]*Snapshot, 0, len(m.byID))
	for _, r := range m.byID {
		if r.Phase == Ready { // "SHALL NOT list a snapshot that is being created but has not been cut" (spec.md, ListSnapshots)
			out = append(out, r.snapshot())
		}
	}
	m.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// lockErr is a lock that could not be taken: the operation is pending.
func lockErr(err error) error { return fmt.Errorf("%w: %v", volume.ErrBusy, err) }
