package layout

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// DirVolumeID is the ID of the ROOT or PATH volume of that name in a pool:
// the pool name, "-" and 128 bits of the name's sha256 in hex. It is
// derived from the name, so a CreateVolume retried after a crash finds its
// own half-made volume.
func DirVolumeID(pool, name string) string {
	sum := sha256.Sum256([]byte(name))
	return pool + "-" + hex.EncodeToString(sum[:16])
}

// diskSlugMax bounds the slug of a disk's path in its DiskID.
const diskSlugMax = 64

// claimSep separates a disk's ID from the name's hash in a ClaimID; it never
// occurs in a DiskID (pool names and slugs are [a-z0-9-]).
const claimSep = '_'

// DiskID is the stable volume ID of a MOUNT pool's disk: the pool name and a
// slug of the disk's path (see Slug). It is the same across restarts and
// reorderings of the pools file.
func DiskID(pool, path string) string {
	return pool + "-" + Slug(path, diskSlugMax)
}

// ClaimID is the volume ID of a disk that CreateVolume hands out for a
// name: the disk's ID, "_" (never in a disk ID) and 64 bits of the name's
// sha256. Each volume made on a disk has its own ID, so a CO's late retry
// of an old volume's delete never reaches the disk's next volume, and a
// replay of the same name gets the same ID. A pool's listed free disks
// (listUnclaimed) keep their DiskID.
func ClaimID(diskID, name string) string {
	sum := sha256.Sum256([]byte(name))
	return diskID + string(claimSep) + hex.EncodeToString(sum[:8])
}

// DiskOf is the ID of the disk of a MOUNT volume ID (a ClaimID or DiskID).
func DiskOf(volumeID string) string {
	if i := strings.IndexByte(volumeID, claimSep); i >= 0 {
		return volumeID[:i]
	}
	return volumeID
}

// Slug turns a path into [a-z0-9-] of at most max bytes; when that loses
// information (case, punctuation, length) a short hash of the path is
// appended, so distinct paths never share a slug.
func Slug(path string, max int) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(path) {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			dash = false
		} else if !dash && b.Len() > 0 {
			b.WriteByte('-')
			dash = true
		}
	}
	s := strings.TrimSuffix(b.String(), "-")
	if "/"+strings.ReplaceAll(s, "-", "/") == path && len(s) <= max {
		return s
	}
	sum := sha256.Sum256([]byte(path))
	h := hex.EncodeToString(sum[:])[:8]
	// "--" never occurs in an exact slug, so a hashed one cannot equal it.
	if keep := max - len(h) - 2; len(s) > keep {
		s = strings.TrimSuffix(s[:keep], "-")
	}
	if s == "" {
		return h
	}
	return s + "--" + h
}

// snapshotSep separates a snapshot ID's pool from the hash of its name.
const snapshotSep = "-snap-"

// SnapshotID is the ID of the snapshot of that CSI name taken of a volume
// of a ROOT or PATH pool: the pool name, "-snap-" and 128 bits of the
// name's sha256 in hex. Like DirVolumeID it is derived from the name, so a
// CreateSnapshot retried after a crash finds its own half-made snapshot;
// snapshot and volume IDs live in separate record directories.
func SnapshotID(pool, name string) string {
	sum := sha256.Sum256([]byte(name))
	return pool + snapshotSep + hex.EncodeToString(sum[:16])
}

// SnapshotPool is the pool of a snapshot ID made by SnapshotID, and
// whether id has that shape.
func SnapshotPool(id string) (string, bool) {
	i := strings.LastIndex(id, snapshotSep)
	if i <= 0 || len(id)-i-len(snapshotSep) != 32 {
		return "", false
	}
	if _, err := hex.DecodeString(id[i+len(snapshotSep):]); err != nil {
		return "", false
	}
	return id[:i], true
}
