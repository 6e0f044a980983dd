package pool

import (
	"bytes"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/pool/mesosres"
)

// Pool names derived from Mesos agent resources (see ParseMesos).
const (
	MesosRootPool  = "root"
	MesosMountPool = "mount"
	mesosPathPre   = "path-"
)

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
	d, err := mesosres.Parse(data)
	var bad *mesosres.ResourceError
	switch {
	case errors.As(err, &bad):
		return nil, fmt.Errorf("%w: mesos resources[%d]: %s", ErrInvalidConfig, bad.Index, bad.Msg)
	case err != nil:
		return nil, fmt.Errorf("%w: mesos resources: %s", ErrInvalidConfig, jsonMessage(data, err))
	}
	c := &Config{}
	if d.Root {
		if workDir == "" {
			return nil, fmt.Errorf("%w: mesos resources: a plain disk resource is the ROOT pool under the agent's work dir: --work-dir is required", ErrInvalidConfig)
		}
		c.Pools = append(c.Pools, Spec{Name: MesosRootPool, Kind: Root, Path: workDir, Capacity: megabytes(d.RootMB)})
	}
	for _, root := range d.PathRoots() {
		c.Pools = append(c.Pools, Spec{Name: MesosPathPoolName(root), Kind: Path, Path: cleanRoot(root), Capacity: megabytes(d.Paths[root])})
	}
	if len(d.Mounts) > 0 {
		spec := Spec{Name: MesosMountPool, Kind: Mount, ListUnclaimed: true}
		for _, root := range d.Mounts {
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
// when it does not fit in 63 bits (mesosres.Fits).
func megabytes(mb float64) *Amount {
	if !mesosres.Fits(mb) {
		return nil
	}
	return &Amount{Bytes: Quantity(int64(mb) * MiB)}
}
