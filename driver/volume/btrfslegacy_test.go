package volume

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/pool"
	"github.com/localdisk-csi/localdisk/driver/state"
	"github.com/localdisk-csi/localdisk/test/testutil"
)

// TestBtrfsVolumeBeforeQuotas: a btrfs pool whose capacities were only
// accounted (quota: off) is made to enforce them (quota: required). Its
// old volume is a plain directory, not a subvolume, and holds more than
// its capacity. The start-up that re-applies each volume's limit must not
// put that volume's capacity on the subvolume holding it (the filesystem's
// top level): that held the whole pool to 4 MiB, so no volume could be
// made or deleted and nothing written anywhere in it.
func TestBtrfsVolumeBeforeQuotas(t *testing.T) {
	testutil.RequireRoot(t)
	dir := testutil.ShortTempDir(t)
	disk := testutil.LoopDisk(t, dir, 320, "btrfs")
	stateDir := filepath.Join(dir, "state")
	spec := pool.Spec{Name: "p", Kind: pool.Path, Path: disk, Capacity: pool.Bytes(200 * MiB), Quota: pool.QuotaOff}
	start := func() *Manager {
		log := logrus.New()
		log.SetOutput(io.Discard)
		m, err := New(stateDir, &pool.Config{Pools: []pool.Spec{spec}}, logrus.NewEntry(log))
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	create := func(m *Manager, name string, size int64) (*Volume, error) {
		sel, err := m.ParseSelector(nil)
		if err != nil {
			t.Fatal(err)
		}
		return m.Create(ctx, CreateRequest{Name: name, Required: size, Selector: sel})
	}
	m := start()
	old, err := create(m, "old", 4*MiB)
	if err != nil {
		m.Close()
		t.Fatal(err)
	}
	if _, err := writeMiB(filepath.Join(layout.VolumeDir(disk, old.ID), "big"), 12); err != nil {
		m.Close()
		t.Fatalf("12 MiB into a 4 MiB volume that is not enforced: %v", err)
	}
	m.Close()

	spec.Quota = pool.QuotaRequired
	m = start()
	defer m.Close()
	data, err := os.ReadFile(layout.RecordPath(stateDir, old.ID))
	var rec state.Record
	if err == nil {
		err = json.Unmarshal(data, &rec)
	}
	if err != nil || rec.Subvolume != 0 {
		t.Errorf("the old volume's record: subvolume %d, %v; want 0 (it is a plain directory)", rec.Subvolume, err)
	}
	// The pool takes new volumes, each held to its own capacity.
	v, err := create(m, "new", 8*MiB)
	if err != nil {
		t.Fatalf("a new volume after quotas were enabled: %v", err)
	}
	n, err := writeMiB(filepath.Join(layout.VolumeDir(disk, v.ID), "f"), 16)
	if !errors.Is(err, syscall.EDQUOT) || n > 8 {
		t.Errorf("16 MiB into the new 8 MiB volume: %d MiB, %v; want EDQUOT by 8 MiB", n, err)
	}
	// The old volume is not enforced (as a project-quota pool's volume made
	// before its quotas), and nothing else is limited by it.
	if n, err := writeMiB(filepath.Join(layout.VolumeDir(disk, old.ID), "more"), 8); err != nil {
		t.Errorf("8 MiB more into the old volume: %d MiB, %v", n, err)
	}
	for _, id := range []string{old.ID, v.ID} {
		if err := m.Delete(ctx, id); err != nil {
			t.Errorf("delete %s: %v", id, err)
		}
	}
}

// writeMiB writes n MiB (synced) to a new file and returns how many whole
// MiB were written before an error.
func writeMiB(path string, n int) (int, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, MiB)
	for i := range buf {
		buf[i] = byte(i * 7)
	}
	for i := range n {
		if _, err := f.Write(buf); err != nil {
			return i, err
		}
		if err := f.Sync(); err != nil {
			return i, err
		}
	}
	return n, nil
}
