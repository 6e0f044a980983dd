// Package selector picks the pools a CreateVolume or a GetCapacity may use:
// it reads their parameters (pool, kind), orders the selected pools, and
// leaves out those that cannot serve the fs_type or the block access asked
// for. Its errors are invalid arguments; the Manager (driver/volume) marks
// them so (volume.ErrInvalid).
package selector

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/pool"
	"github.com/localdisk-csi/localdisk/driver/volume/poolroot"
)

// Selector picks pools: by name, by kind, or (both empty) all of them.
type Selector struct {
	Pool string
	Kind pool.Kind
}

// Parse reads CreateVolume/GetCapacity parameters against the configured
// pools (by name). Unknown keys, unknown pools and kinds, and a pool of
// another kind than asked fail.
func Parse(params map[string]string, pools map[string]*poolroot.Pool) (Selector, error) {
	var s Selector
	keys := make([]string, 0, len(params))
	for k := range params {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := params[k]
		switch {
		case k == layout.ParamPool:
			if pools[v] == nil {
				return s, fmt.Errorf("parameter pool: no pool named %q", v)
			}
			s.Pool = v
		case k == layout.ParamKind:
			kind, err := pool.ParseKind(v)
			if err != nil {
				return s, fmt.Errorf("parameter kind: %v", err)
			}
			s.Kind = kind
		case strings.HasPrefix(k, layout.IgnoredParamPrefix):
		default:
			return s, fmt.Errorf("unknown parameter %q (known: pool, kind)", k)
		}
	}
	if s.Pool != "" && s.Kind != "" && pools[s.Pool].Kind != s.Kind {
		return s, fmt.Errorf("pool %q is of kind %s, not %s", s.Pool, pools[s.Pool].Kind, s.Kind)
	}
	return s, nil
}

// Match reports whether the pool is selected.
func (s Selector) Match(p *poolroot.Pool) bool {
	return (s.Pool == "" || s.Pool == p.Name) && (s.Kind == "" || s.Kind == p.Kind)
}

// Candidates are the selected pools of order (configuration order), ROOT
// first, then PATH, then MOUNT, each kind in configuration order.
func (s Selector) Candidates(order []*poolroot.Pool) []*poolroot.Pool {
	var out []*poolroot.Pool
	for _, k := range pool.Kinds {
		for _, p := range order {
			if p.Kind == k && s.Match(p) {
				out = append(out, p)
			}
		}
	}
	return out
}

// ByFSType leaves out the directory pools on another filesystem than
// fs_type asks for: a directory volume is served with its pool's
// filesystem type, or with none named. It fails when no pool is left for
// that reason alone.
func ByFSType(cands []*poolroot.Pool, fsType string) ([]*poolroot.Pool, error) {
	if fsType == "" {
		return cands, nil
	}
	var other *poolroot.Pool
	kept := slices.DeleteFunc(slices.Clone(cands), func(p *poolroot.Pool) bool {
		off := p.Kind.Directory() && p.FSType() != "" && !strings.EqualFold(p.FSType(), fsType)
		if off {
			other = p
		}
		return off
	})
	if len(kept) == 0 && other != nil {
		return nil, fmt.Errorf("fs_type %q: pool %q is on %s; its volumes take that fs_type or none",
			fsType, other.Name, other.FSType())
	}
	return kept, nil
}

// HasDevices reports whether a MOUNT pool has device disks (for block
// volumes).
func HasDevices(p *poolroot.Pool) bool {
	return slices.ContainsFunc(p.Disks, (*pool.Disk).IsDevice)
}
