package volume

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/localdisk-csi/localdisk/driver/pool"
)

func (m *Manager) generation() uint64 {
	return m.recs.Gen()
}

// The index's generation, which the cached List answer (and the encoded
// ListVolumes answer built from it) keys on, changes only when something
// changed: health checks and erase resumptions that change nothing keep
// the cached answer; a create, an expansion and a delete do not; nor does a
// disk of a pool that lists its free disks when it is measured late.
func TestList_GenChangesOnlyWithTheVolumes(t *testing.T) {
	f := newFixture(t)
	disks := t.TempDir()
	f.cfg.Pools = append(f.cfg.Pools, pool.Spec{Name: "m", Kind: pool.Mount, ListUnclaimed: true,
		Disks: []pool.DiskSpec{{Path: filepath.Join(disks, "d1")}}})
	f.restart()
	if _, err := f.create("a", MiB, 0, nil); err != nil {
		t.Fatal(err)
	}
	gen, before := f.m.generation(), f.m.List()
	for range 3 {
		f.m.CheckHealth()
		f.m.ResumeErases()
		f.m.MeasureUse(context.Background())
	}
	if g := f.m.generation(); g != gen {
		t.Errorf("health checks that changed nothing moved the generation from %d to %d", gen, g)
	}
	if after := f.m.List(); len(after) != len(before) || &after[0] != &before[0] {
		t.Error("List built a new answer although nothing changed")
	}

	// A disk measured late is listed with its size (the pool's Gen).
	p := f.m.pools["m"]
	p.SetDiskSize(p.Disks[0], 7*MiB)
	var listed int64 = -1
	for _, v := range f.m.List() {
		if v.Pool == p {
			listed = v.Capacity
		}
	}
	if listed != 7*MiB {
		t.Errorf("the free disk measured late is listed with %d bytes, want 7 MiB", listed)
	}
	if g := f.m.generation(); g != gen {
		t.Errorf("a disk measured late moved the index's generation (%d to %d)", gen, g)
	}

	v, err := f.create("b", MiB, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, change := range []struct {
		what string
		do   func() error
	}{
		{"create", func() error { return nil }},
		{"expand", func() error { _, err := f.m.Expand(t.Context(), v.ID, 2*MiB, 0); return err }},
		{"delete", func() error { return f.m.Delete(t.Context(), v.ID) }},
	} {
		if err := change.do(); err != nil {
			t.Fatalf("%s: %v", change.what, err)
		}
		if g := f.m.generation(); g == gen {
			t.Errorf("the generation did not change with a %s", change.what)
		}
		gen = f.m.generation()
	}
	if l := f.m.List(); len(l) != 2 { // a, and the free disk
		t.Errorf("List after the delete: %d volumes, want 2", len(l))
	}
}

// A walk whose context ended records nothing (never a partial sum), and
// the watch returns only once its walk has stopped.
func TestMeasureUse_StopsWithItsContext(t *testing.T) {
	f := newFixture(t)
	if _, err := f.create("a", MiB, 0, nil); err != nil {
		t.Fatal(err)
	}
	p := f.m.pools["r"]
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f.m.MeasureUse(ctx)
	if _, ok := p.MeasuredUse(); ok {
		t.Error("a walk cancelled before its first volume recorded the pool's use")
	}
	f.m.Watch(ctx, time.Hour) // its walk sees the ended context too
	if f.m.measuring.Load() {
		t.Error("the watch returned while its walk still ran")
	}
	if _, ok := p.MeasuredUse(); ok {
		t.Error("the watch's cancelled walk recorded the pool's use")
	}
	f.m.MeasureUse(context.Background())
	if _, ok := p.MeasuredUse(); !ok {
		t.Error("a whole walk did not record the pool's use")
	}
}
