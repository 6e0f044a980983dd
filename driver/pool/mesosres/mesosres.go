// Package mesosres reads the disk resources of a Mesos agent: the JSON
// array operators pass to `mesos-agent --resources` (mesos.proto's
// Resource), of which localdisk reads the disk resources only. What pools
// they make is driver/pool's (pool.ParseMesos).
package mesosres

import (
	"encoding/json"
	"fmt"
	"math"
	"sort"
)

// resource is the part of a Mesos Resource (mesos.proto) that localdisk
// reads; every other field (role, reservations, ...) is ignored.
type resource struct {
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

// Disks is what an agent's disk resources declare. Scalars are megabytes
// as in Mesos (2^20 bytes), each sum below 2^63 bytes.
type Disks struct {
	// Root: plain disk resources (no source), the agent's work dir;
	// RootMB is their scalars summed.
	Root   bool
	RootMB float64
	// Paths are the PATH roots, each with its scalars summed.
	Paths map[string]float64
	// Mounts are the MOUNT roots, sorted.
	Mounts []string
}

// ResourceError is a disk resource that cannot be read: Index is its place
// in the array.
type ResourceError struct {
	Index int
	Msg   string
}

func (e *ResourceError) Error() string { return fmt.Sprintf("resources[%d]: %s", e.Index, e.Msg) }

// Parse reads the disk resources of an agent's resources array. A document
// that is not such an array fails with encoding/json's error (its offset
// kept, for the caller to name a line and column); a disk resource that
// cannot be read fails with a *ResourceError. Non-disk resources are
// ignored.
func Parse(data []byte) (*Disks, error) {
	var res []resource
	if err := json.Unmarshal(data, &res); err != nil {
		return nil, err
	}
	d := &Disks{Paths: map[string]float64{}}
	mounts := map[string]bool{}
	for i, r := range res {
		if r.Name != "disk" {
			continue
		}
		bad := func(format string, a ...any) error {
			return &ResourceError{Index: i, Msg: fmt.Sprintf(format, a...)}
		}
		if r.Type != "" && r.Type != "SCALAR" || r.Scalar == nil || r.Scalar.Value < 0 {
			return nil, bad("a disk resource needs a non-negative scalar")
		}
		mb := r.Scalar.Value
		if !Fits(mb) || !Fits(d.RootMB+mb) {
			return nil, bad("scalar %v MB does not fit in 64 bits", mb)
		}
		if r.Disk == nil || r.Disk.Source == nil {
			d.RootMB += mb
			d.Root = true
			continue
		}
		switch s := r.Disk.Source; s.Type {
		case "PATH":
			if s.Path == nil || s.Path.Root == "" {
				return nil, bad("PATH source without path.root")
			}
			if !Fits(d.Paths[s.Path.Root] + mb) {
				return nil, bad("scalar %v MB does not fit in 64 bits", mb)
			}
			d.Paths[s.Path.Root] += mb
		case "MOUNT":
			if s.Mount == nil || s.Mount.Root == "" {
				return nil, bad("MOUNT source without mount.root")
			}
			mounts[s.Mount.Root] = true
		default:
			return nil, bad("disk source type %q is not supported (want PATH or MOUNT)", s.Type)
		}
	}
	for root := range mounts {
		d.Mounts = append(d.Mounts, root)
	}
	sort.Strings(d.Mounts)
	return d, nil
}

// Fits reports whether a scalar of mb megabytes (2^20 bytes) is
// non-negative and, in bytes, below 2^63.
func Fits(mb float64) bool { return mb >= 0 && mb < float64(math.MaxInt64/(1<<20)) }

// PathRoots are the PATH roots, sorted.
func (d *Disks) PathRoots() []string {
	roots := make([]string, 0, len(d.Paths))
	for r := range d.Paths {
		roots = append(roots, r)
	}
	sort.Strings(roots)
	return roots
}
