package poolroot

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/pool"
)

// marker is what a pool root carries, and what the state dir recorded for it.
type marker struct {
	Pool string `json:"pool"`
	ID   string `json:"id"`
}

// markerStamp identifies the marker file last found correct, so that the
// checks before every operation cost one stat instead of a read and parse.
type markerStamp struct {
	dev, ino    uint64
	size, mtime int64
}

func stampOf(st unix.Stat_t) markerStamp {
	return markerStamp{dev: st.Dev, ino: st.Ino, size: st.Size, mtime: st.Mtim.Nano()}
}

func (p *Pool) stampOK(st unix.Stat_t) bool {
	s, _ := p.stamp.Load().(markerStamp)
	return s != markerStamp{} && s == stampOf(st)
}

// readMarker reads and checks the marker, remembering its stamp.
func (p *Pool) readMarker(r *os.Root, st unix.Stat_t) error {
	var m marker
	data, err := r.ReadFile(markerFile)
	if err == nil {
		err = json.Unmarshal(data, &m)
	}
	if err == nil && (m.ID != p.markerID() || m.Pool != p.Name) {
		err = fmt.Errorf("marker %s/%s is pool %q id %s, not the recorded %s", dataDir, markerFile, m.Pool, m.ID, p.markerID())
	}
	if err != nil {
		return err
	}
	if st.Ino != 0 {
		p.stamp.Store(stampOf(st))
	}
	return nil
}

// markerPresent is the cheap health check: one stat of the marker matching
// the stamp of the marker last verified; anything else reads it again.
func (p *Pool) markerPresent() error {
	var st unix.Stat_t
	if p.markerID() != "" && unix.Lstat(filepath.Join(p.Dir, dataDir, markerFile), &st) == nil && p.stampOK(st) {
		return nil
	}
	r, err := p.Open()
	if err == nil {
		r.Close()
	}
	return err
}

// adoptMarker returns the marker ID the pool must carry. The state dir's
// copy wins; a pool seen for the first time is initialised only when no
// record points into it.
func adoptMarker(stateRoot *os.Root, spec pool.Spec, dir string, hasRecords bool) (string, error) {
	found, recorded, fresh, err := findMarker(stateRoot, spec, dir, func() bool { return hasRecords })
	if err != nil || recorded {
		return found.ID, err // Open verifies the disk carries a recorded one
	}
	if fresh {
		pr, err := os.OpenRoot(dir)
		if err != nil {
			return "", err
		}
		defer pr.Close()
		if err := pr.Mkdir(dataDir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return "", err
		}
		blob, _ := json.Marshal(found)
		if err := writeFileSync(pr, path.Join(dataDir, markerFile), blob); err != nil {
			return "", err
		}
	}
	blob, _ := json.Marshal(found)
	if err := writeFileSync(stateRoot, filepath.Join(poolsDir, layout.PoolFile(spec.Name)), blob); err != nil {
		return "", err
	}
	return found.ID, nil
}

// findMarker is what adoptMarker decides, without writing anything: the
// marker recorded in the state dir (recorded; stateRoot may be nil: no
// state dir yet), else the one on the pool's disk, else a new one for a
// pool that no record points into (fresh: adoptMarker writes it).
func findMarker(stateRoot *os.Root, spec pool.Spec, dir string, hasRecords func() bool) (found marker, recorded, fresh bool, err error) {
	if stateRoot != nil {
		data, err := stateRoot.ReadFile(filepath.Join(poolsDir, layout.PoolFile(spec.Name)))
		switch {
		case err == nil:
			if err := json.Unmarshal(data, &found); err != nil {
				return marker{}, false, false, fmt.Errorf("state %s/%s.json: %w", poolsDir, spec.Name, err)
			}
			return found, true, false, nil
		case !errors.Is(err, fs.ErrNotExist):
			return marker{}, false, false, err
		}
	}
	pr, err := os.OpenRoot(dir)
	if err != nil {
		return marker{}, false, false, err
	}
	defer pr.Close()
	markerPath := path.Join(dataDir, markerFile)
	onDisk, err := pr.ReadFile(markerPath)
	switch {
	case err == nil:
		if err := json.Unmarshal(onDisk, &found); err != nil || found.Pool != spec.Name || found.ID == "" {
			return marker{}, false, false, fmt.Errorf("marker %s belongs to another pool or is corrupt", filepath.Join(dir, markerPath))
		}
		return found, false, false, nil
	case !errors.Is(err, fs.ErrNotExist):
		return marker{}, false, false, err
	case hasRecords():
		return marker{}, false, false, errors.New("marker missing while volume records point into the pool (disk not mounted?)")
	}
	return marker{Pool: spec.Name, ID: randomID()}, false, true, nil
}

// writeFileSync writes name atomically and durably inside r.
func writeFileSync(r *os.Root, name string, data []byte) error {
	tmp := name + ".tmp"
	f, err := r.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = r.Rename(tmp, name)
	}
	if err != nil {
		r.Remove(tmp)
		return err
	}
	d, err := r.Open(path.Dir(name))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func randomID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}
