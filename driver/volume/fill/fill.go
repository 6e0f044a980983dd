// Package fill is the hook by which a new ROOT/PATH volume is filled from
// a snapshot or another volume (CreateVolume's volume_content_source):
// the Source interface driver/snapshot implements, and what the volume
// Manager's create asks of it. It knows nothing of snapshots.
package fill

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"

	"github.com/localdisk-csi/localdisk/driver/state"
	"github.com/localdisk-csi/localdisk/driver/volume/poolroot"
)

// Source fills a new ROOT/PATH volume.
type Source interface {
	// ID is the snapshot or volume ID, recorded in the new volume's record.
	ID() string
	// Pool is the pool it lies in: the only pool the volume can be made in.
	Pool() string
	// Fill makes the volume's directory <pool>/localdisk/volumes/<rec.ID>
	// holding the source's data, its capacity limit applied (it may set
	// rec.Subvolume; rec is not indexed yet). When it fails it leaves
	// nothing behind.
	Fill(ctx context.Context, root *os.Root, p *poolroot.Pool, rec *state.Record) error
	// Done follows a successful Fill once the record was written
	// (recorded) or could not be (the data is then removed again).
	Done(rec *state.Record, recorded bool)
	// Filling reports that a fill of volume id from it is still running
	// (an earlier call's, whose caller gave up): its data is partly on
	// the disk already, so the filesystem's room must not be asked again.
	Filling(id string) bool
}

// Filling is src.Filling(id), false without a source.
func Filling(src Source, id string) bool { return src != nil && src.Filling(id) }

// ErrInvalid is volume.ErrInvalid (defined here, where Candidates wraps it).
var ErrInvalid = errors.New("invalid argument")

// Candidates returns the filter of the pools a volume filled from src may
// be made in (all of them without a source): the source's own pool, if
// selected. It passes an error of the selection through.
func Candidates(src Source) func([]*poolroot.Pool, error) ([]*poolroot.Pool, error) {
	return func(cands []*poolroot.Pool, err error) ([]*poolroot.Pool, error) {
		if err != nil || src == nil {
			return cands, err
		}
		return only(cands, src)
	}
}

func only(cands []*poolroot.Pool, src Source) ([]*poolroot.Pool, error) {
	if cands = slices.DeleteFunc(cands, func(p *poolroot.Pool) bool { return p.Name != src.Pool() }); len(cands) == 0 {
		return nil, fmt.Errorf("%w: source %s is in pool %q, which the parameters do not select", ErrInvalid, src.ID(), src.Pool())
	}
	return cands, nil
}

// ID is src's ID, "" for none.
func ID(src Source) string {
	if src == nil {
		return ""
	}
	return src.ID()
}

// Make makes a new volume's directory: empty (poolroot.Pool.MakeVolumeDir)
// without a source, else filled by it.
func Make(ctx context.Context, src Source, root *os.Root, p *poolroot.Pool, rec *state.Record) error {
	if src == nil {
		return p.MakeVolumeDir(root, rec)
	}
	return src.Fill(ctx, root, p, rec)
}

// Done tells src (if any) whether the record was written after Make.
func Done(src Source, rec *state.Record, recorded bool) {
	if src != nil {
		src.Done(rec, recorded)
	}
}
