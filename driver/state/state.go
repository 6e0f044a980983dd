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
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"regexp"
	"strings"

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

// Store is the directory of records.
type Store struct {
	root    *os.Root   // <state-dir>/volumes
	dir     *os.File   // the same directory, for fsync
	dirSync *groupSync // the directory's fsyncs, shared by concurrent changes
}

// Open opens (creating, mode 0700) <stateDir>/volumes.
func Open(stateDir string) (*Store, error) {
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return nil, err
	}
	if err := os.Chmod(stateDir, 0o700); err != nil {
		return nil, err
	}
	root, dir, err := openSub(stateDir, layout.RecordsDir)
	if err != nil {
		return nil, err
	}
	return &Store{root: root, dir: dir, dirSync: newGroupSync(dir.Sync)}, nil
}

// Close releases the store's directory handles.
func (s *Store) Close() error {
	s.dir.Close()
	return s.root.Close()
}

// Put writes r durably, with the current format Version (r itself is not
// changed), replacing any earlier record of the same ID. When it returns an
// error the old record (or its absence) is intact.
func (s *Store) Put(r *Record) error {
	if !ValidID(r.ID) {
		return fmt.Errorf("record: invalid volume ID %q", r.ID)
	}
	if err := s.dirSync.Err(); err != nil {
		return fmt.Errorf("write record %s: an earlier sync of the directory failed: %w", r.ID, err)
	}
	v := *r
	v.Version = Version
	data, err := json.Marshal(&v)
	if err != nil {
		return err
	}
	tmp := layout.TempRecordFile(r.ID)
	if err := writeSync(s.root, tmp, data); err != nil {
		s.root.Remove(tmp)
		return fmt.Errorf("write record %s: %w", r.ID, err)
	}
	failpoint.Inject(failpoint.RecordWritten)
	if err := s.root.Rename(tmp, layout.RecordFile(r.ID)); err != nil {
		s.root.Remove(tmp)
		return fmt.Errorf("write record %s: %w", r.ID, err)
	}
	failpoint.Inject(failpoint.RecordRenamed)
	if err := s.dirSync.Sync(); err != nil {
		return fmt.Errorf("write record %s: sync directory: %w", r.ID, err)
	}
	return nil
}

func writeSync(root *os.Root, name string, data []byte) error {
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// Delete removes the record of id durably. It is not an error when there is
// no such record.
func (s *Store) Delete(id string) error {
	if !ValidID(id) {
		return nil
	}
	if err := s.dirSync.Err(); err != nil {
		return fmt.Errorf("delete record %s: an earlier sync of the directory failed: %w", id, err)
	}
	if err := s.root.Remove(layout.RecordFile(id)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("delete record %s: %w", id, err)
	}
	failpoint.Inject(failpoint.RecordDropped)
	if err := s.dirSync.Sync(); err != nil {
		return fmt.Errorf("delete record %s: sync directory: %w", id, err)
	}
	return nil
}

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
	return scan(s.root, true)
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
	entries, err := fs.ReadDir(root.FS(), ".")
	if err != nil {
		return nil, nil, err
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, layout.TempPrefix) {
			if !removeTemp {
				continue
			}
			if err := root.Remove(name); err != nil {
				return nil, nil, fmt.Errorf("remove stale temp record %s: %w", name, err)
			}
			continue
		}
		id, ok := layout.RecordID(name)
		if !ok || !ValidID(id) || !e.Type().IsRegular() {
			bad = append(bad, &LoadError{File: name, Err: errors.New("not a volume record")})
			continue
		}
		r, err := read(root, name)
		if err == nil && r.ID != id {
			err = fmt.Errorf("record names volume %q", r.ID)
		}
		if err != nil {
			bad = append(bad, &LoadError{File: name, Err: err})
			continue
		}
		records = append(records, r)
	}
	return records, bad, nil
}

func read(root *os.Root, name string) (*Record, error) {
	data, err := root.ReadFile(name)
	if err != nil {
		return nil, err
	}
	var r Record
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("corrupt: %w", err)
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
