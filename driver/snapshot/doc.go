// Package snapshot makes, lists and deletes the snapshots of ROOT and PATH
// volumes, and fills new volumes from a snapshot or another volume
// (CreateVolume's volume_content_source, through volume/fill.Source).
//
// Where the data lives: in the source volume's pool, in the directory the
// pool keeps for itself, <pool root>/localdisk/snapshots/<snapshot ID>
// (a read-only btrfs snapshot, or a copy of the volume's tree), so that a
// snapshot keeps its data when its source volume is deleted. Its record is
// <state-dir>/snapshots/<snapshot ID>.json, written like a volume's
// (temp, fsync, rename, fsync of the directory). A snapshot is charged to
// its pool at its source volume's capacity.
//
// How a pool copies (Method): btrfs (volumes are subvolumes: an instant
// read-only snapshot, and an instant writable snapshot of it, or of a
// volume, for a restore or a clone), reflink (a tree copy whose file data
// is shared with FICLONE, driver/copytree), copy (a full copy, only when
// the pool says `snapshots: copy`), or none (MOUNT pools, and pools whose
// filesystem cannot share data without that option).
//
// The life of a snapshot (its record's phase):
//
//	btrfs:        (none) --charge, snapshot, write `ready`--> ready
//	reflink/copy: (none) --charge, write `copying`--> copying --copy (background)--> write `ready`
//	delete:       ready --write `deleting`--> deleting --remove data, drop record, release--> (none)
//
// A crash converges at start-up: a `copying` snapshot is removed (never
// listed as ready), a `deleting` one deleted, and data under snapshots/
// without a record (a btrfs snapshot whose record was never written) is
// removed. A volume being filled has a restore intent,
// <state-dir>/restores/<volume ID>.json, written before its data lands and
// dropped once its record is written; at start-up an intent whose volume
// has no record has its directory removed.
package snapshot
