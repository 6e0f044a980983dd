// Package trash keeps the trash of a ROOT/PATH pool's data directory
// (<root>/localdisk/trash/<id>) and its orphans: it moves a deleted
// volume's directory to the trash, tells a delete interrupted there, and
// sweeps what a crash left in the trash and in volumes/ without a record.
// The Manager (driver/volume) tells it which IDs have records and runs each
// sweep under the ID's lock.
package trash

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/mounter"
	"github.com/localdisk-csi/localdisk/driver/volume/poolroot"
	"github.com/localdisk-csi/localdisk/driver/volume/stagemark"
)

// Layout of a ROOT or PATH pool's root directory (driver/layout's names).
const (
	dataDir    = layout.DataDir    // <root>/localdisk
	volumesDir = layout.VolumesDir // <root>/localdisk/volumes/<id>
	trashDir   = layout.TrashDir   // <root>/localdisk/trash/<id>
)

// Move moves a volume's directory into the pool's trash (re-making the
// trash if it went missing, and moving aside what an earlier delete of the
// same ID left there). A directory already gone from volumes/ was moved by
// an earlier try. root is the pool's data directory.
func Move(root *os.Root, id string) error {
	from, to := path.Join(volumesDir, id), path.Join(trashDir, id)
	if _, err := root.Lstat(from); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err := root.Mkdir(trashDir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	if _, err := root.Lstat(to); err == nil { // leftovers are swept at start-up
		aside := fmt.Sprintf("%s.%d", to, time.Now().UnixNano())
		if err := root.Rename(to, aside); err != nil {
			return err
		}
	}
	return root.Rename(from, to)
}

// Entries lists what the healthy pools' trash holds, as "pool/id".
func Entries(pools []*poolroot.Pool) map[string]bool {
	out := map[string]bool{}
	for _, p := range pools {
		root, entries := p.List(trashDir)
		if root == nil {
			continue
		}
		root.Close()
		for _, e := range entries {
			out[p.Name+"/"+e.Name()] = true
		}
	}
	return out
}

// Trashed reports whether a directory volume's directory is in the trash
// and no longer in volumes/: its delete was interrupted.
func Trashed(p *poolroot.Pool, id string) bool {
	if !p.Kind.Directory() {
		return false
	}
	root, err := p.Open()
	if err != nil {
		return false
	}
	defer root.Close()
	_, inVolumes := root.Lstat(path.Join(volumesDir, id))
	_, inTrash := root.Lstat(path.Join(trashDir, id))
	return errors.Is(inVolumes, fs.ErrNotExist) && inTrash == nil
}

// Sweeper sweeps a healthy pool's trash and orphans.
type Sweeper struct {
	Log *logrus.Entry
	// Known reports whether a record of the ID exists.
	Known func(id string) bool
	// With runs f under the ID's lock (or not at all, when another
	// operation holds it).
	With func(id string, f func())
}

// Trash removes what a crash left in a healthy pool's trash without a
// record (a record there is a delete still to finish), never through a
// mount.
func (s Sweeper) Trash(p *poolroot.Pool) {
	root, entries := p.List(trashDir)
	if root == nil {
		return
	}
	defer root.Close()
	if len(entries) == 0 {
		return
	}
	t, err := mounter.ReadTable()
	if err != nil {
		return
	}
	for _, e := range entries {
		s.With(e.Name(), func() {
			if s.Known(e.Name()) {
				return // a delete to finish: its record's convergence failed
			}
			if mp, ok := stagemark.Busy(t, filepath.Join(p.Dir, dataDir, trashDir, e.Name())); ok {
				s.Log.WithFields(logrus.Fields{"pool": p.Name, "entry": e.Name(), "mount": mp}).
					Warn("trash entry is mounted somewhere: left alone")
				return
			}
			if err := root.RemoveAll(path.Join(trashDir, e.Name())); err != nil {
				s.Log.WithError(err).WithField("pool", p.Name).Warn("could not empty trash")
			}
		})
	}
}

// Orphans removes the empty directories of creates that crashed before
// their record was written; anything else without a record is kept and
// reported.
func (s Sweeper) Orphans(p *poolroot.Pool) {
	root, entries := p.List(volumesDir)
	if root == nil {
		return
	}
	defer root.Close()
	for _, e := range entries {
		s.With(e.Name(), func() { // a create holds it from its mkdir to its record
			if s.Known(e.Name()) {
				return
			}
			log := s.Log.WithFields(logrus.Fields{"pool": p.Name, "entry": e.Name()})
			if err := p.RemoveOrphan(root, e.Name()); err != nil {
				log.WithError(err).Warn("directory without a volume record left alone")
			} else {
				log.Info("removed the empty directory of an unfinished create")
			}
		})
	}
}
