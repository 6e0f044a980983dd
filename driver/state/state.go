// Package state keeps localdisk's crash-safe per-volume records: one JSON file
// per volume under <state-dir>/volumes, each replaced atomically (temp file,
// fsync, rename, fsync of the directory), so that a crash at any point leaves
// either the old or the new record, never a torn one. There is no whole-state
// rewrite: an operation writes only its own volume's record.
//
// The Store does no locking of its own: callers serialise writes to one
// record (per-volume locks); writes to different records may run in parallel.
// It never changes a Record it is given: a Record is a value, and the one
// in memory that a caller hands to Put stays the caller's.
package state

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"regexp"

	"github.com/localdisk-csi/localdisk/driver/failpoint"
	"github.com/localdisk-csi/localdisk/driver/layout"
)

// Phase is where a volume is in its life.
type Phase string

// The phases of a record.
const (
	// Creating is legacy: versions before the single-write create recorded
	// it (capacity reserved, the directory perhaps not made yet). Nothing
	// writes it any more; Load still reads it, and the volume manager's
	// start-up converges such a record (driver/volume/legacy.go).
	Creating Phase = "creating"
	// Ready: the volume exists and may be published.
	Ready Phase = "ready"
	// Deleting: the volume is being removed; capacity stays charged until the
	// record is dropped.
	Deleting Phase = "deleting"
)

// KindMount is the Kind of a MOUNT volume's record.
const KindMount = "mount"

// Version is the record format version written into every record.
const Version = 1

// Record is one volume's durable state.
type Record struct {
	Version int `json:"version"`
	// ID is the CSI volume ID.
	ID string `json:"id"`
	// Name is the CO's name for the volume (opaque; never used as a path).
	// Empty only for a MOUNT pool's pre-existing disk that localdisk holds
	// while it erases it (no CO ever named it).
	Name string `json:"name"`
	// Pool and Kind locate the volume.
	Pool string `json:"pool"`
	Kind string `json:"kind"`
	// Capacity is the volume's size in bytes (whole MiB).
	Capacity int64 `json:"capacity"`
	// Phase is the volume's phase.
	Phase Phase `json:"phase"`
	// Context is the volume_context returned by CreateVolume and ListVolumes.
	Context map[string]string `json:"context,omitempty"`
	// ProjectID is the quota project of a ROOT/PATH volume (0: none).
	ProjectID uint32 `json:"projectID,omitempty"`
	// Subvolume is the btrfs subvolume ID of a ROOT/PATH volume (0: none).
	Subvolume uint64 `json:"subvolume,omitempty"`
	// Identity is the stable identity of a MOUNT volume's device (WWN,
	// serial, filesystem UUID, loop backing file), so a renamed device never
	// hands one volume another's disk.
	Identity map[string]string `json:"identity,omitempty"`
	// Block is set for a raw block volume.
	Block bool `json:"block,omitempty"`
	// Erase is the progress of a device disk's erase while `deleting`.
	Erase *Erase `json:"erase,omitempty"`
	// Source is the snapshot or volume ID a ROOT/PATH volume was filled
	// from (CreateVolume's volume_content_source), "" for an empty one.
	Source string `json:"source,omitempty"`
}

// Clone returns a copy of r that shares nothing with it: its maps and its
// Erase are copied too, so either can be changed without the other seeing.
func (r *Record) Clone() *Record {
	c := *r
	c.Context = maps.Clone(r.Context)
	c.Identity = maps.Clone(r.Identity)
	if r.Erase != nil {
		e := *r.Erase
		c.Erase = &e
	}
	return &c
}

// Erase records how far a device erase got, so a restart resumes it.
type Erase struct {
	Method string `json:"method"`
	// Offset is how many bytes from the start are erased.
	Offset int64 `json:"offset"`
}

// IDPattern is the shape of every volume ID localdisk makes.
var IDPattern = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,127}$`)

// ValidID reports whether id can be a localdisk volume ID, and so a record
// file name.
func ValidID(id string) bool { return IDPattern.MatchString(id) }

// Store is the directory of records: Files of volume records.
type Store struct{ files *Files }

// Open opens (creating, mode 0700) <stateDir>/volumes.
func Open(stateDir string) (*Store, error) {
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, err
	}
	if err := os.Chmod(stateDir, 0o700); err != nil {
		return nil, err
	}
	f, err := OpenFiles(stateDir, layout.RecordsDir)
	if err != nil {
		return nil, err
	}
	f.noun = "record"
	f.written, f.renamed, f.dropped = failpoint.RecordWritten, failpoint.RecordRenamed, failpoint.RecordDropped
	return &Store{files: f}, nil
}

// Close releases the store's directory handles.
func (s *Store) Close() error { return s.files.Close() }

// Put writes r durably, with the current format Version (r itself is not
// changed), replacing any earlier record of the same ID. When it returns an
// error the old record (or its absence) is intact.
func (s *Store) Put(r *Record) error {
	v := *r
	v.Version = Version
	return s.files.Put(r.ID, &v)
}

// Delete removes the record of id durably. It is not an error when there is
// no such record.
func (s *Store) Delete(id string) error { return s.files.Delete(id) }

// LoadError names a record that could not be read.
type LoadError struct {
	File string
	Err  error
}

func (e *LoadError) Error() string { return fmt.Sprintf("volume record %s: %v", e.File, e.Err) }
func (e *LoadError) Unwrap() error { return e.Err }

// Load reads every record. Temp files left by a crash mid-write are removed
// (their rename never happened, so the previous record is the truth). A
// record that cannot be parsed is returned in bad, never silently dropped.
func (s *Store) Load() (records []*Record, bad []*LoadError, err error) {
	return scan(s.files.root, true)
}

// ReadAll reads every record of the state dir as Load would, without
// writing anything: temp files are skipped, not removed, and a state dir
// (or volumes directory) that does not exist yet holds no records. It is
// for `localdisk check`, which must not change the state.
func ReadAll(stateDir string) (records []*Record, bad []*LoadError, err error) {
	root, err := os.OpenRoot(layout.StateRecordsDir(stateDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, nil
	}
	if err != nil {
		return nil, nil, err
	}
	defer root.Close()
	return scan(root, false)
}

// scan reads the records in root, removing temp files if removeTemp.
func scan(root *os.Root, removeTemp bool) (records []*Record, bad []*LoadError, err error) {
	bad, err = walk(root, removeTemp, func(id string, data []byte) error {
		r, err := parse(data)
		if err == nil && r.ID != id {
			err = fmt.Errorf("record names volume %q", r.ID)
		}
		if err == nil {
			records = append(records, r)
		}
		return err
	})
	return records, bad, err
}

// parse decodes a volume record and checks it.
func parse(data []byte) (*Record, error) {
	var r Record
	if err := DecodeStrict(data, &r); err != nil {
		return nil, err
	}
	if r.Version != Version {
		return nil, fmt.Errorf("unsupported record version %d", r.Version)
	}
	switch r.Phase {
	case Creating, Ready, Deleting:
	default:
		return nil, fmt.Errorf("unknown phase %q", r.Phase)
	}
	if r.Name == "" && r.Kind != KindMount || r.Pool == "" || r.Capacity < 0 {
		return nil, errors.New("corrupt: missing name, pool or capacity")
	}
	return &r, nil
}
