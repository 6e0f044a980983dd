package testutil

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/state"
)

// RecordsDir is <state-dir>/volumes.
func (e *Env) RecordsDir() string { return layout.StateRecordsDir(e.StateDir) }

// Records reads every volume record, failing the test on a file that is
// not one (a leftover temp file is reported too: after a clean start-up
// there is none).
func (e *Env) Records() []state.Record {
	e.T.Helper()
	ents, err := os.ReadDir(e.RecordsDir())
	if err != nil {
		e.T.Fatalf("reading the records: %v", err)
	}
	var out []state.Record
	for _, ent := range ents {
		data, err := os.ReadFile(filepath.Join(e.RecordsDir(), ent.Name()))
		var r state.Record
		if err == nil {
			err = json.Unmarshal(data, &r)
		}
		if err != nil || ent.Name() != layout.RecordFile(r.ID) {
			e.T.Errorf("state dir holds %s, not a volume record (%v)", ent.Name(), err)
			continue
		}
		out = append(out, r)
	}
	return out
}

// PoolDir is the root of a ROOT or PATH pool.
func (e *Env) PoolDir(name string) string {
	if name == RootPool {
		return e.RootDir
	}
	return e.PathDisk
}

// VolumeDir is the data directory of a ROOT or PATH volume.
func (e *Env) VolumeDir(pool, id string) string {
	return layout.VolumeDir(e.PoolDir(pool), id)
}

// PoolDirs lists the volume and trash directories of a ROOT or PATH pool.
func (e *Env) PoolDirs(name string) (vols, trash []string) {
	e.T.Helper()
	return names(e, layout.PoolVolumesDir(e.PoolDir(name))), names(e, layout.PoolTrashDir(e.PoolDir(name)))
}

func names(e *Env, dir string) []string {
	e.T.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		e.T.Errorf("reading %s: %v", dir, err)
	}
	var out []string
	for _, ent := range ents {
		out = append(out, ent.Name())
	}
	return out
}

// DiskOf returns the MOUNT disk (mount point, or device of DevicePool)
// of volume id, or "".
func (e *Env) DiskOf(id string) string {
	for _, d := range e.Disks {
		if layout.DiskID(MountPool, d) == layout.DiskOf(id) {
			return d
		}
	}
	for _, d := range e.Devices {
		if layout.DiskID(DevicePool, d) == layout.DiskOf(id) {
			return d
		}
	}
	return ""
}

// CheckConverged asserts what must hold whenever no operation is under way:
// ListVolumes works and lists each volume once; every record is `ready`,
// names are unique and the records are exactly the listed volumes; each
// ROOT/PATH pool holds exactly the directories of its volumes and an empty
// trash; GetCapacity of each pool is its capacity minus its volumes. It
// reports every violation with Errorf and returns the volumes by ID.
func (e *Env) CheckConverged() map[string]*csi.Volume {
	e.T.Helper()
	t := e.T
	listed, err := e.List()
	if err != nil {
		t.Errorf("ListVolumes: %v", err)
	}
	byID := map[string]*csi.Volume{}
	for _, v := range listed {
		if byID[v.GetVolumeId()] != nil {
			t.Errorf("ListVolumes lists %s twice", v.GetVolumeId())
		}
		byID[v.GetVolumeId()] = v
	}
	names := map[string]string{}
	inPool := map[string][]string{}
	used := map[string]int64{}
	for _, r := range e.Records() {
		if r.Phase != state.Ready {
			t.Errorf("record %s (name %q) is %q, want ready: not converged", r.ID, r.Name, r.Phase)
		}
		if other, dup := names[r.Name]; dup {
			t.Errorf("name %q has two volumes: %s and %s", r.Name, other, r.ID)
		}
		names[r.Name] = r.ID
		inPool[r.Pool] = append(inPool[r.Pool], r.ID)
		used[r.Pool] += r.Capacity
		if v := byID[r.ID]; v == nil {
			t.Errorf("record %s (name %q) is not listed by ListVolumes", r.ID, r.Name)
		} else if v.GetCapacityBytes() != r.Capacity {
			t.Errorf("volume %s listed with %d bytes, recorded with %d", r.ID, v.GetCapacityBytes(), r.Capacity)
		}
		if r.Pool == DevicePool && e.DiskOf(r.ID) == "" {
			t.Errorf("device volume %s is no configured device", r.ID)
		}
		if r.Pool == MountPool {
			if d := e.DiskOf(r.ID); d == "" {
				t.Errorf("MOUNT volume %s is no configured disk", r.ID)
			} else if size := DiskSize(t, d); size != r.Capacity {
				t.Errorf("MOUNT volume %s has %d bytes, its disk %d", r.ID, r.Capacity, size)
			}
		}
	}
	for id := range byID {
		if !slices.Contains(inPool[byID[id].GetVolumeContext()[layout.ContextPool]], id) {
			t.Errorf("ListVolumes lists %s, which has no record", id)
		}
	}
	for _, p := range []string{RootPool, PathPool} {
		vols, trash := e.PoolDirs(p)
		want := slices.Clone(inPool[p])
		sort.Strings(want)
		if !slices.Equal(vols, want) {
			t.Errorf("pool %s holds volume directories %v, want exactly its volumes %v", p, vols, want)
		}
		if len(trash) > 0 {
			t.Errorf("pool %s: trash not empty: %v", p, trash)
		}
		e.checkCapacity(p, e.Caps[p]-used[p])
	}
	var disks int64
	for _, d := range e.Disks {
		disks += DiskSize(t, d)
	}
	e.checkCapacity(MountPool, disks-used[MountPool])
	if len(e.Devices) > 0 {
		e.checkCapacity(DevicePool, e.Caps[DevicePool]-used[DevicePool])
	}
	return byID
}

func (e *Env) checkCapacity(pool string, want int64) {
	e.T.Helper()
	got, _, err := e.Capacity(pool)
	if err != nil || got != want {
		e.T.Errorf("GetCapacity(pool %s) = %d (%v), want %d", pool, got, err, want)
	}
}

// FilesBelow lists every path below dir (relative, sorted), with a type
// letter, permissions, owner and, for regular files, the content (symlinks:
// their target): a snapshot to compare.
// Mounted filesystems below dir are listed like directories.
func FilesBelow(t interface {
	Helper()
	Fatalf(string, ...any)
}, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		entry := d.Type().String()[:1] + " " + rel
		if fi, err := os.Lstat(p); err == nil {
			st := fi.Sys().(*syscall.Stat_t)
			entry += fmt.Sprintf(" %v %d:%d", fi.Mode().Perm(), st.Uid, st.Gid)
		}
		switch {
		case d.Type().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			entry += " " + strings.ReplaceAll(string(data), "\n", "\\n")
		case d.Type()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			entry += " -> " + l
		}
		out = append(out, entry)
		return nil
	})
	if err != nil {
		t.Fatalf("listing %s: %v", dir, err)
	}
	return out
}
