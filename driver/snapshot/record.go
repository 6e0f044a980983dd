package snapshot

import (
	"errors"
	"fmt"
	"time"

	"github.com/localdisk-csi/localdisk/driver/state"
)

// Phase is where a snapshot is in its life.
type Phase string

// The phases of a snapshot record.
const (
	// Copying: the data is being copied (reflink, copy); not usable yet.
	Copying Phase = "copying"
	// Ready: the snapshot can be restored.
	Ready Phase = "ready"
	// Deleting: its data is being removed; its charge is held until the
	// record is dropped.
	Deleting Phase = "deleting"
)

// Version is the format version of the records and intents.
const Version = 1

// Record is one snapshot's durable state.
type Record struct {
	Version int    `json:"version"`
	ID      string `json:"id"`
	Name    string `json:"name"`
	Pool    string `json:"pool"`
	// Source is the ID of the volume the snapshot was taken of.
	Source string `json:"source"`
	// Capacity is the source volume's capacity when the snapshot was
	// taken: what it is charged to its pool, and the least a volume
	// restored from it gets.
	Capacity int64 `json:"capacity"`
	// Created is when it was taken, in Unix nanoseconds.
	Created int64  `json:"created"`
	Phase   Phase  `json:"phase"`
	Method  Method `json:"method"`
}

// Snapshot is what the CSI services see of a snapshot.
type Snapshot struct {
	ID, Name, Source, Pool string
	Size                   int64
	Created                time.Time
	Ready                  bool
}

func (r *Record) snapshot() *Snapshot {
	return &Snapshot{ID: r.ID, Name: r.Name, Source: r.Source, Pool: r.Pool, Size: r.Capacity,
		Created: time.Unix(0, r.Created), Ready: r.Phase == Ready}
}

// Restore is the intent of a volume being filled from a source, durable
// from before its data lands until its record is written.
type Restore struct {
	Version int    `json:"version"`
	Volume  string `json:"volume"`
	Pool    string `json:"pool"`
	Source  string `json:"source"`
}

func decodeRecord(id string, data []byte) (*Record, error) {
	var r Record
	if err := state.DecodeStrict(data, &r); err != nil {
		return nil, err
	}
	switch {
	case r.Version != Version:
		return nil, fmt.Errorf("unsupported record version %d", r.Version)
	case r.ID != id:
		return nil, fmt.Errorf("record names snapshot %q", r.ID)
	case r.Phase != Copying && r.Phase != Ready && r.Phase != Deleting:
		return nil, fmt.Errorf("unknown phase %q", r.Phase)
	case r.Name == "" || r.Pool == "" || r.Source == "" || r.Capacity < 0:
		return nil, errors.New("corrupt: missing name, pool, source or capacity")
	}
	return &r, nil
}

func decodeRestore(id string, data []byte) (*Restore, error) {
	var r Restore
	if err := state.DecodeStrict(data, &r); err != nil {
		return nil, err
	}
	if r.Version != Version || r.Volume != id || r.Pool == "" {
		return nil, fmt.Errorf("corrupt restore intent (version %d, volume %q, pool %q)", r.Version, r.Volume, r.Pool)
	}
	return &r, nil
}
