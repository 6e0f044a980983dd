package pool

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"path/filepath"
	"sort"

	"github.com/localdisk-csi/localdisk/driver/layout"
)

// Pool names derived from Mesos agent resources (see ParseMesos).
const (
	MesosRootPool  = "root"
	MesosMountPool = "mount"
	mesosPathPre   = "path-"
)

// mesosResource is the part of a Mesos Resource (mesos.proto) that
// localdisk reads; every other field (role, reservations, ...) is ignored.
type mesosResource struct {
	Name   string `json:"name"`
	Type   string `json:"type"`
	Scalar *struct {
		Value float64 `json:"value"`
	} `json:"scalar"`
	Disk *struct {
		Source *struct {
			Type string `json:"type"`
			Path *struct {
				Root string `json:"root"`
			} `json:"path"`
			Mount *struct {
				Root string `json:"root"`
			} `json:"mount"`
		} `json:"source"`
	} `json:"disk"`
}

// IsMesosResources reports whether a pools file is a Mesos agent
// `--resources` JSON array rather than the native form.
func IsMesosResources(data []byte) bool {
	return bytes.HasPrefix(bytes.TrimSpace(data), []byte("["))
}

// ParseMesos turns the JSON array operators pass to `mesos-agent
// --resources` into pools, so that a cluster that declares its disks there
// can hand them to localdisk unchanged:
//
//   - plain `disk` resources (no source) are the ROOT pool "root" at workDir
//     (the agent's work dir), their scalars summed;
//   - each `PATH` root is a PATH pool named "path-" plus a slug of the root
//     (with a hash suffix when the slug is lossy or long), its scalars summed;
//   - the `MOUNT` roots are the disks of one MOUNT pool "mount" that lists
//     its unclaimed disks (Mesos's pre-existing disks).
//
// Scalars are megabytes as in Mesos (2^20 bytes). Non-disk resources are
// ignored. Names depend only on the roots, so reordering changes nothing.
func ParseMesos(data []byte, workDir string) (*Config, error) {
	var res []mesosResource
	if err := json.Unmarshal(data, &res); err != nil {
		return nil, fmt.Errorf("%w: mesos resources: %s", ErrInvalidConfig, jsonMessage(data, err))
	}
	var rootMB float64
	hasRoot := false
	paths := map[string]float64{}
	mounts := map[string]bool{}
	for i, r := range res {
		if r.Name != "disk" {
			continue
		}
		bad := func(format string, a ...any) error {
			return fmt.Errorf("%w: mesos resources[%d]: %s", ErrInvalidConfig, i, fmt.Sprintf(format, a...))
		}
		if r.Type != "" && r.Type != "SCALAR" || r.Scalar == nil || r.Scalar.Value < 0 {
			return nil, bad("a disk resource needs a non-negative scalar")
		}
		mb := r.Scalar.Value
		if megabytes(mb) == nil || megabytes(rootMB+mb) == nil {
			return nil, bad("scalar %v MB does not fit in 64 bits", mb)
		}
		if r.Disk == nil || r.Disk.Source == nil {
			rootMB += mb
			hasRoot = true
			continue
		}
		switch s := r.Disk.Source; s.Type {
		case "PATH":
			if s.Path == nil || s.Path.Root == "" {
				return nil, bad("PATH source without path.root")
			}
			if megabytes(paths[s.Path.Root]+mb) == nil {
				return nil, bad("scalar %v MB does not fit in 64 bits", mb)
			}
			paths[s.Path.Root] += mb
		case "MOUNT":
			if s.Mount == nil || s.Mount.Root == "" {
				return nil, bad("MOUNT source without mount.root")
			}
			mounts[s.Mount.Root] = true
		default:
			return nil, bad("disk source type %q is not supported (want PATH or MOUNT)", s.Type)
		}
	}
	c := &Config{}
	if hasRoot {
		if workDir == "" {
			return nil, fmt.Errorf("%w: mesos resources: a plain disk resource is the ROOT pool under the agent's work dir: --work-dir is required", ErrInvalidConfig)
		}
		c.Pools = append(c.Pools, Spec{Name: MesosRootPool, Kind: Root, Path: workDir, Capacity: megabytes(rootMB)})
	}
	for _, root := range sortedKeys(paths) {
		c.Pools = append(c.Pools, Spec{Name: MesosPathPoolName(root), Kind: Path, Path: cleanRoot(root), Capacity: megabytes(paths[root])})
	}
	if len(mounts) > 0 {
		spec := Spec{Name: MesosMountPool, Kind: Mount, ListUnclaimed: true}
		for _, root := range sortedKeys(mounts) {
			spec.Disks = append(spec.Disks, DiskSpec{Path: cleanRoot(root)})
		}
		c.Pools = append(c.Pools, spec)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("mesos resources: %w", err)
	}
	return c, nil
}

// MesosPathPoolName is the pool name of a Mesos PATH root.
func MesosPathPoolName(root string) string {
	return mesosPathPre + layout.Slug(cleanRoot(root), MaxNameLen-len(mesosPathPre))
}

// cleanRoot keeps a relative root as given, so Validate names it.
func cleanRoot(root string) string {
	if filepath.IsAbs(root) {
		return filepath.Clean(root)
	}
	return root
}

// megabytes converts a Mesos scalar (MB = 2^20 bytes) to whole MiB; nil
// when it does not fit in 63 bits.
func megabytes(mb float64) *Amount {
	if mb < 0 || mb >= float64(math.MaxInt64/MiB) {
		return nil
	}
	return &Amount{Bytes: Quantity(int64(mb) * MiB)}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
