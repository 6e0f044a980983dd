package snapshot

import (
	"errors"
	"fmt"

	"github.com/localdisk-csi/localdisk/driver/volume"
)

// Sentinel errors (driver/csiutil maps them to codes).
var (
	// ErrNotFound: no such snapshot.
	ErrNotFound = errors.New("snapshot not found")
	// ErrAlreadyExists: the name is a snapshot of another volume.
	ErrAlreadyExists = errors.New("snapshot already exists with another source")
	// ErrNotSupported: the pool cannot snapshot or clone (a MOUNT pool, or
	// a filesystem that cannot share data without `snapshots: copy`). An
	// ErrInvalid of package volume: the source is not supported.
	ErrNotSupported = fmt.Errorf("%w: snapshots not supported", volume.ErrInvalid)
	// ErrNotReady: the snapshot's copy still runs (a volume_content_source
	// that cannot be used yet; retry later). An ErrBusy of package volume.
	ErrNotReady = fmt.Errorf("%w: snapshot not ready", volume.ErrBusy)
)
