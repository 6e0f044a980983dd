package volume

import (
	"fmt"
	"sort"
	"strings"

	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/pool"
)

// Selector picks pools: by name, by kind, or (both empty) all of them.
type Selector struct {
	Pool string
	Kind pool.Kind
}

// ParseSelector reads CreateVolume/GetCapacity parameters. Unknown keys,
// unknown pools and kinds, and a pool of another kind than asked are
// ErrInvalid.
func (m *Manager) ParseSelector(params map[string]string) (Selector, error) {
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
			if m.pools[v] == nil {
				return s, fmt.Errorf("%w: parameter pool: no pool named %q", ErrInvalid, v)
			}
			s.Pool = v
		case k == layout.ParamKind:
			kind, err := pool.ParseKind(v)
			if err != nil {
				return s, fmt.Errorf("%w: parameter kind: %v", ErrInvalid, err)
			}
			s.Kind = kind
		case strings.HasPrefix(k, layout.IgnoredParamPrefix):
		default:
			return s, fmt.Errorf("%w: unknown parameter %q (known: pool, kind)", ErrInvalid, k)
		}
	}
	if s.Pool != "" && s.Kind != "" && m.pools[s.Pool].Kind != s.Kind {
		return s, fmt.Errorf("%w: pool %q is of kind %s, not %s", ErrInvalid, s.Pool, m.pools[s.Pool].Kind, s.Kind)
	}
	return s, nil
}

// Match reports whether the pool is selected.
func (s Selector) Match(p *Pool) bool {
	return (s.Pool == "" || s.Pool == p.Name) && (s.Kind == "" || s.Kind == p.Kind)
}

// candidates are the selected pools, ROOT first, then PATH, then MOUNT, each
// kind in configuration order.
func (m *Manager) candidates(s Selector) []*Pool {
	var out []*Pool
	for _, k := range pool.Kinds {
		for _, p := range m.order {
			if p.Kind == k && s.Match(p) {
				out = append(out, p)
			}
		}
	}
	return out
}

// contextOf is the pool's volume_context, one map shared by its volumes
// (read-only).
func contextOf(p *Pool) map[string]string { return p.VolumeContext() }
