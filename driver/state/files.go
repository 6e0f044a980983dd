package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/localdisk-csi/localdisk/driver/failpoint"
	"github.com/localdisk-csi/localdisk/driver/layout"
)

// Files is a directory of the state dir holding one crash-safe JSON file
// per key (temp file, fsync, rename, fsync of the directory): the volume
// records (Store), the snapshots' records and the restores' intents
// (driver/snapshot). The directory's fsyncs are a group commit (groupSync),
// and after a failed one every change fails with nothing changed. Like
// Store it does no locking of its own.
type Files struct {
	root    *os.Root
	dir     *os.File
	dirSync *groupSync // the directory's fsyncs, shared by concurrent changes
	noun    string     // what a file is, in errors ("record": Store)
	// points are the failpoints after a temp file is written, after its
	// rename and after a removal ("": none; Store's are failpoint.Record*).
	written, renamed, dropped string
}

// OpenFiles opens (creating, mode 0700) <stateDir>/<name>; the state dir
// itself must exist (Open makes it).
func OpenFiles(stateDir, name string) (*Files, error) {
	root, dir, err := openSub(stateDir, name)
	if err != nil {
		return nil, err
	}
	return &Files{root: root, dir: dir, dirSync: newGroupSync(dir.Sync), noun: "state file"}, nil
}

// openSub opens (creating, mode 0700) <stateDir>/<name>, as a root and as
// a handle to fsync.
func openSub(stateDir, name string) (*os.Root, *os.File, error) {
	sr, err := os.OpenRoot(stateDir)
	if err != nil {
		return nil, nil, err
	}
	defer sr.Close()
	if err := sr.Mkdir(name, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, nil, err
	}
	root, err := sr.OpenRoot(name)
	if err != nil {
		return nil, nil, err
	}
	dir, err := root.Open(".")
	if err != nil {
		root.Close()
		return nil, nil, err
	}
	return root, dir, nil
}

// Close releases the directory's handles.
func (f *Files) Close() error {
	f.dir.Close()
	return f.root.Close()
}

// Put writes v as key's file durably; when it fails, the old file (or its
// absence) is intact. key must be a ValidID.
func (f *Files) Put(key string, v any) error {
	if !ValidID(key) {
		return fmt.Errorf("%s: invalid key %q", f.noun, key)
	}
	if err := f.dirSync.Err(); err != nil {
		return fmt.Errorf("write %s %s: an earlier sync of the directory failed: %w", f.noun, key, err)
	}
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	tmp := layout.TempRecordFile(key)
	if err := writeSync(f.root, tmp, data); err != nil {
		f.root.Remove(tmp)
		return fmt.Errorf("write %s %s: %w", f.noun, key, err)
	}
	inject(f.written)
	if err := f.root.Rename(tmp, layout.RecordFile(key)); err != nil {
		f.root.Remove(tmp)
		return fmt.Errorf("write %s %s: %w", f.noun, key, err)
	}
	inject(f.renamed)
	if err := f.dirSync.Sync(); err != nil {
		return fmt.Errorf("write %s %s: sync directory: %w", f.noun, key, err)
	}
	return nil
}

func inject(point string) {
	if point != "" {
		failpoint.Inject(point)
	}
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

// Delete removes key's file durably; no such file is not an error.
func (f *Files) Delete(key string) error {
	if !ValidID(key) {
		return nil
	}
	if err := f.dirSync.Err(); err != nil {
		return fmt.Errorf("delete %s %s: an earlier sync of the directory failed: %w", f.noun, key, err)
	}
	if err := f.root.Remove(layout.RecordFile(key)); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("delete %s %s: %w", f.noun, key, err)
	}
	inject(f.dropped)
	if err := f.dirSync.Sync(); err != nil {
		return fmt.Errorf("delete %s %s: sync directory: %w", f.noun, key, err)
	}
	return nil
}

// Load calls decode for each file, by key; temp files a crash left are
// removed. A file that cannot be read or decoded is returned in bad, never
// dropped.
func (f *Files) Load(decode func(key string, data []byte) error) (bad []*LoadError, err error) {
	return walk(f.root, true, decode)
}

// walk calls decode for each file of root, by key, removing the temp files
// a crash left if removeTemp (else skipping them). A file that cannot be
// read or decoded is returned in bad.
func walk(root *os.Root, removeTemp bool, decode func(key string, data []byte) error) (bad []*LoadError, err error) {
	entries, err := fs.ReadDir(root.FS(), ".")
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, layout.TempPrefix) {
			if !removeTemp {
				continue
			}
			if err := root.Remove(name); err != nil {
				return nil, fmt.Errorf("remove stale temp file %s: %w", name, err)
			}
			continue
		}
		key, ok := layout.RecordID(name)
		if !ok || !ValidID(key) || !e.Type().IsRegular() {
			bad = append(bad, &LoadError{File: name, Err: errors.New("not a state file")})
			continue
		}
		data, err := root.ReadFile(name)
		if err == nil {
			err = decode(key, data)
		}
		if err != nil {
			bad = append(bad, &LoadError{File: name, Err: err})
		}
	}
	return bad, nil
}

// DecodeStrict decodes data into v, refusing unknown fields.
func DecodeStrict(data []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("corrupt: %w", err)
	}
	return nil
}
