package layout

import (
	"path/filepath"
	"strings"
)

// A ROOT or PATH pool's root directory (<pool root>). The names are relative
// to their parent, as the plugin opens them through an os.Root.
const (
	// DataDir holds everything localdisk keeps in the pool:
	// <pool root>/localdisk, mode 0700.
	DataDir = "localdisk"
	// MarkerFile is the pool's marker {pool, id}, written when the pool is
	// first initialised: <pool root>/localdisk/pool.json.
	MarkerFile = "pool.json"
	// VolumesDir holds the volumes' data: <pool root>/localdisk/volumes/<id>.
	VolumesDir = "volumes"
	// TrashDir holds volumes being deleted: <pool root>/localdisk/trash/<id>.
	TrashDir = "trash"
)

// The state directory (--state-dir). The names are relative to it.
const (
	// RecordsDir holds one record per volume: <state-dir>/volumes/<id>.json
	// (RecordFile), mode 0700.
	RecordsDir = "volumes"
	// TempPrefix starts the name of a record being written:
	// <state-dir>/volumes/.tmp-<id>.json (TempRecordFile).
	TempPrefix = ".tmp-"
	// PoolsDir holds the marker ID each ROOT/PATH pool must carry:
	// <state-dir>/pools/<name>.json (PoolFile).
	PoolsDir = "pools"
	// StagedDir holds the staging marks of MOUNT disks given by path,
	// one per disk: <state-dir>/staged/<disk ID> (DiskOf of its volume IDs).
	StagedDir = "staged"
	// ScratchDir is where read-only binds are prepared when they are made
	// with mount(2): <state-dir>/mnt.
	ScratchDir = "mnt"
	// DefaultRootDir is the root of the default ROOT pool, served when there
	// is no pools file: <state-dir>/root.
	DefaultRootDir = "root"
)

// jsonExt ends the name of every record and pool marker file.
const jsonExt = ".json"

// RecordFile is the name of volume id's record in RecordsDir.
func RecordFile(id string) string { return id + jsonExt }

// TempRecordFile is the name in RecordsDir of volume id's record while it
// is being written.
func TempRecordFile(id string) string { return TempPrefix + id + jsonExt }

// RecordID is the volume ID of a record's file name in RecordsDir, and
// whether the name is one a record could have (a temp file is not).
func RecordID(file string) (id string, ok bool) {
	if strings.HasPrefix(file, TempPrefix) {
		return "", false
	}
	if id, ok := strings.CutSuffix(file, jsonExt); ok {
		return id, true
	}
	return "", false
}

// PoolFile is the name in PoolsDir of pool name's recorded marker.
func PoolFile(name string) string { return name + jsonExt }

// PoolVolumesDir is <pool root>/localdisk/volumes.
func PoolVolumesDir(poolRoot string) string { return filepath.Join(poolRoot, DataDir, VolumesDir) }

// PoolTrashDir is <pool root>/localdisk/trash.
func PoolTrashDir(poolRoot string) string { return filepath.Join(poolRoot, DataDir, TrashDir) }

// VolumeDir is the data directory of ROOT or PATH volume id:
// <pool root>/localdisk/volumes/<id>.
func VolumeDir(poolRoot, id string) string { return filepath.Join(PoolVolumesDir(poolRoot), id) }

// StateRecordsDir is <state-dir>/volumes.
func StateRecordsDir(stateDir string) string { return filepath.Join(stateDir, RecordsDir) }

// RecordPath is volume id's record: <state-dir>/volumes/<id>.json.
func RecordPath(stateDir, id string) string {
	return filepath.Join(StateRecordsDir(stateDir), RecordFile(id))
}

// Snapshots: their data in the pool of their source volume, their records
// in the state directory.
const (
	// SnapshotsDir holds the snapshots' data in a ROOT or PATH pool:
	// <pool root>/localdisk/snapshots/<snapshot ID> (a read-only btrfs
	// snapshot, or a copy of the volume's tree), and their records in the
	// state directory: <state-dir>/snapshots/<snapshot ID>.json.
	SnapshotsDir = "snapshots"
	// RestoresDir holds the intent of each volume being filled from a
	// snapshot or another volume, until its record is written:
	// <state-dir>/restores/<volume ID>.json.
	RestoresDir = "restores"
)

// PoolSnapshotsDir is <pool root>/localdisk/snapshots.
func PoolSnapshotsDir(poolRoot string) string { return filepath.Join(poolRoot, DataDir, SnapshotsDir) }
