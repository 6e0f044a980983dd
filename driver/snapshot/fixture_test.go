package snapshot

import (
	"bytes"
	"context"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/pool"
	"github.com/localdisk-csi/localdisk/driver/volume"
	"github.com/localdisk-csi/localdisk/driver/volume/volumetest"
	"github.com/localdisk-csi/localdisk/test/testutil"
)

const miB = pool.MiB

// fix is a volume Manager and a snapshot Manager over one PATH pool "p"
// on a loop disk of its own.
type fix struct {
	t        *testing.T
	disk     string
	stateDir string
	cfg      *pool.Config
	vols     *volume.Manager
	snaps    *Manager
}

func newFix(t *testing.T, fstype string, sizeMiB int, spec pool.Spec) *fix {
	testutil.RequireRoot(t)
	dir := testutil.ShortTempDir(t)
	f := &fix{t: t, disk: testutil.LoopDisk(t, dir, sizeMiB, fstype), stateDir: filepath.Join(dir, "state")}
	spec.Name, spec.Kind, spec.Path = "p", pool.Path, f.disk
	f.cfg = &pool.Config{Pools: []pool.Spec{spec}}
	f.start()
	t.Cleanup(f.stop)
	return f
}

func (f *fix) start() {
	f.t.Helper()
	vols, err := volume.New(f.stateDir, f.cfg, volumetest.Discard())
	if err != nil {
		f.t.Fatal(err)
	}
	snaps, err := New(vols, f.stateDir, volumetest.Discard())
	if err != nil {
		vols.Close()
		f.t.Fatal(err)
	}
	f.vols, f.snaps = vols, snaps
}

func (f *fix) stop() {
	if f.snaps != nil {
		f.snaps.Close()
		f.vols.Close()
		f.snaps, f.vols = nil, nil
	}
}

func (f *fix) restart() { f.stop(); f.start() }

func (f *fix) pool() *volume.Pool { return f.vols.Pools()[0] }

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// create makes a volume, filled from src if not nil.
func (f *fix) create(name string, size int64, src *source) (*volume.Volume, error) {
	sel, err := f.vols.ParseSelector(nil)
	if err != nil {
		f.t.Fatal(err)
	}
	req := volume.CreateRequest{Name: name, Required: size, Selector: sel}
	if src != nil {
		req.Source = src
	}
	return f.vols.Create(ctx(f.t), req)
}

func (f *fix) mustCreate(name string, size int64) *volume.Volume {
	f.t.Helper()
	v, err := f.create(name, size, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	return v
}

// restore makes a volume from snapshot snapID or (snapID "") volume volID.
func (f *fix) restore(name string, snapID, volID string) (*volume.Volume, error) {
	f.t.Helper()
	s, size, err := f.snaps.Source(snapID, volID)
	if err != nil {
		return nil, err
	}
	return f.create(name, size, s.(*source))
}

func (f *fix) volDir(id string) string { return layout.VolumeDir(f.disk, id) }

// snapshot takes snapshot name of volume id and waits until it is ready.
func (f *fix) snapshot(name, id string) *Snapshot {
	f.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		s, err := f.snaps.Create(ctx(f.t), name, id)
		if err != nil {
			f.t.Fatalf("snapshot %s of %s: %v", name, id, err)
		}
		if s.Ready {
			return s
		}
		if time.Now().After(deadline) {
			f.t.Fatalf("snapshot %s not ready after a minute", name)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tree is a small tree of files: contents by relative path; symlinks
// start with "->".
type tree map[string]string

func sampleTree(t *testing.T) tree {
	big := make([]byte, 3*miB)
	rand.Read(big)
	return tree{"a.txt": "alpha", "dir/b.bin": string(big), "dir/sub/c": "gamma", "link": "->dir/b.bin", "out": "->/etc/passwd"}
}

func (tr tree) write(t *testing.T, dir string) {
	t.Helper()
	for rel, data := range tr {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		if target, ok := cutLink(data); ok {
			err = os.Symlink(target, p)
		} else {
			err = os.WriteFile(p, []byte(data), 0o640)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link(filepath.Join(dir, "a.txt"), filepath.Join(dir, "hard")); err != nil {
		t.Fatal(err)
	}
}

func cutLink(s string) (string, bool) {
	if len(s) > 2 && s[:2] == "->" {
		return s[2:], true
	}
	return "", false
}

// check fails t unless dir holds tr exactly (and a.txt's hard link).
func (tr tree) check(t *testing.T, dir string) {
	t.Helper()
	for rel, want := range tr {
		p := filepath.Join(dir, rel)
		if target, ok := cutLink(want); ok {
			if got, err := os.Readlink(p); err != nil || got != target {
				t.Errorf("%s: symlink to %q (%v), want %q", p, got, err, target)
			}
			continue
		}
		got, err := os.ReadFile(p)
		if err != nil || !bytes.Equal(got, []byte(want)) {
			t.Errorf("%s: %d bytes (%v), want the %d written", p, len(got), err, len(want))
		}
	}
	a, err1 := os.Stat(filepath.Join(dir, "a.txt"))
	h, err2 := os.Stat(filepath.Join(dir, "hard"))
	if err1 != nil || err2 != nil || !os.SameFile(a, h) {
		t.Errorf("%s: hard link lost (%v, %v)", dir, err1, err2)
	}
}

// entries lists the names in dir (none if it does not exist).
func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}
