package volume

import (
	"os"

	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/pool"
	"github.com/localdisk-csi/localdisk/driver/volume/poolroot"
)

// Layout of a ROOT or PATH pool's root directory (driver/layout's names).
const (
	dataDir    = layout.DataDir    // <root>/localdisk, mode 0700
	volumesDir = layout.VolumesDir // <root>/localdisk/volumes/<id>
	trashDir   = layout.TrashDir   // <root>/localdisk/trash/<id>
	poolsDir   = layout.PoolsDir   // <state-dir>/pools/<name>.json
)

// Pool is a configured pool with where it lives on this node: its marker,
// its health, its filesystem (see driver/volume/poolroot).
type Pool = poolroot.Pool

// Inspection is what the start-up of a Manager would find of a ROOT/PATH
// pool (see poolroot.InspectPool).
type Inspection = poolroot.Inspection

// InspectPool inspects a ROOT/PATH pool as the Manager's start-up would,
// without creating, writing or enabling anything (poolroot.InspectPool).
func InspectPool(stateDir string, spec pool.Spec, hasRecords func() bool) Inspection {
	return poolroot.InspectPool(stateDir, spec, hasRecords)
}

// refresh finds the pool on this node and reports whether it is healthy
// (poolroot.Pool.Refresh), with the state dir's recorded markers, the
// records pointing into it and the Manager's quota set-up.
func (m *Manager) refresh(p *Pool) (bool, error) {
	return p.Refresh(m.stateRoot, func() bool { return m.recs.HasPool(p.Name) }, func(root *os.Root) error {
		return m.quotas.Setup(p.Pool, root, m.log, m.projects)
	})
}

// lacking reports whether an optional pool is absent from this node
// (poolroot.Pool.Lacking): no volume record points into it either.
func (m *Manager) lacking(p *Pool) bool {
	return p.Lacking(func() bool { return m.recs.HasPool(p.Name) })
}

// projects lists the project IDs the records hold (for a new project ID
// allocator: capacity.Quotas.Setup).
func (m *Manager) projects() []uint32 {
	recs := m.Records()
	out := make([]uint32, 0, len(recs))
	for _, r := range recs {
		out = append(out, r.ProjectID)
	}
	return out
}
