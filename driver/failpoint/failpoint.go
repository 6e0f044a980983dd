// Package failpoint names the points where localdisk's crash tests kill the
// plugin. In a normal build Inject does nothing and costs nothing; in a
// build with `-tags failpoints`, Inject(name) kills the process with SIGKILL
// when $LOCALDISK_FAILPOINT names that point ("name", or "name@N" for its
// N-th hit), so a test can crash the real plugin between any two effects of
// a mutating operation and check that a restart plus the caller's retry
// converge.
package failpoint

// Env is the environment variable that arms a failpoint.
const Env = "LOCALDISK_FAILPOINT"

// The crash points, in the order their operation reaches them.
const (
	// Record writes (every state change goes through them).
	RecordWritten   = "record.written"      // temp record fsync'd, not yet renamed
	RecordRenamed   = "record.renamed"      // renamed into place, directory not yet fsync'd
	RecordDropped   = "record.dropped"      // removed, directory not yet fsync'd
	CreateMkdir     = "create.mkdir"        // directory (and quota) made, no record yet
	DeleteMarked    = "delete.marked"       // MOUNT: `deleting` record written, data untouched
	DeleteTrashed   = "delete.trashed"      // ROOT/PATH: directory in the trash, record not yet dropped
	DeleteRemoved   = "delete.removed"      // data removed, record not yet dropped
	WipeStarted     = "wipe.started"        // MOUNT disk: first entry removed
	StageMounted    = "stage.mounted"       // staging bind made, reply not sent
	PublishMounted  = "publish.mounted"     // target bind made, reply not sent
	UnpublishUnmntd = "unpublish.unmounted" // target unmounted, not yet removed
	UnstageUnmntd   = "unstage.unmounted"   // staging unmounted, reply not sent
	ExpandRecorded  = "expand.recorded"     // new size recorded, quota not yet raised

	// Snapshots and restores (driver/snapshot).
	SnapshotCopying       = "snapshot.copying"        // `copying` record written, copy not started
	SnapshotData          = "snapshot.data"           // data made (btrfs snapshot, copy), `ready` not yet written
	SnapshotDeleteMarked  = "snapshot.delete.marked"  // `deleting` written, data untouched
	SnapshotDeleteRemoved = "snapshot.delete.removed" // data removed, record not yet dropped
	RestoreIntent         = "restore.intent"          // restore intent written, no data yet
	RestoreFilled         = "restore.filled"          // volume filled, record not yet written
)

// Points lists every crash point, for tests that visit them all.
var Points = []string{
	RecordWritten, RecordRenamed, RecordDropped,
	CreateMkdir,
	DeleteMarked, DeleteTrashed, DeleteRemoved, WipeStarted,
	StageMounted, PublishMounted, UnpublishUnmntd, UnstageUnmntd, ExpandRecorded,
}

// SnapshotPoints lists the crash points of snapshots, restores and clones
// (driver/snapshot); the restore of a volume also passes CreateMkdir.
var SnapshotPoints = []string{
	SnapshotCopying, SnapshotData, SnapshotDeleteMarked, SnapshotDeleteRemoved,
	RestoreIntent, RestoreFilled,
}
