package layout

// CreateVolume and GetCapacity parameters.
const (
	// ParamPool selects a pool by name.
	ParamPool = "pool"
	// ParamKind selects any pool of a kind: root, path or mount.
	ParamKind = "kind"
	// IgnoredParamPrefix starts the parameters that Kubernetes adds
	// (csi.storage.k8s.io/pvc/name, ...); they are ignored.
	IgnoredParamPrefix = "csi.storage.k8s.io/"
)

// Volume context keys: the context of every volume is its pool's name and
// kind, under the keys of the parameters that select that pool.
const (
	ContextPool = ParamPool
	ContextKind = ParamKind
)

// VolumeContext is the volume_context of the volumes of a pool.
func VolumeContext(pool, kind string) map[string]string {
	return map[string]string{ContextPool: pool, ContextKind: kind}
}

// TopologyKey is the key of a node's one topology segment, whose value is
// the node ID. It is the same whatever --driver-name says: Kubernetes makes
// it a node label, and PVs' node affinities name it.
const TopologyKey = "topology.localdisk.csi.io/node"
