package pool

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"sigs.k8s.io/yaml"
)

// Config is the pools file: `pools:` followed by a list of pools.
type Config struct {
	Pools []Spec `json:"pools"`
}

// Spec is one pool as configured.
type Spec struct {
	// Name identifies the pool in parameters (`pool: NAME`) and records.
	Name string `json:"name"`
	// Kind is root, path or mount.
	Kind Kind `json:"kind"`
	// Path is the pool's root directory (ROOT and PATH pools).
	Path string `json:"path,omitempty"`
	// Capacity caps what the pool hands out (ROOT and PATH); default: the
	// filesystem's size minus Reserve.
	Capacity *Quantity `json:"capacity,omitempty"`
	// Reserve is kept free of volumes (ROOT and PATH).
	Reserve Quantity `json:"reserve,omitempty"`
	// ListUnclaimed lists the free disks of a MOUNT pool in ListVolumes, as
	// Mesos wants for pre-existing disks.
	ListUnclaimed bool `json:"listUnclaimed,omitempty"`
	// Disks are the whole disks of a MOUNT pool.
	Disks []DiskSpec `json:"disks,omitempty"`
}

// DiskSpec is one whole disk of a MOUNT pool.
type DiskSpec struct {
	// Path is where the operator mounted the disk's filesystem.
	Path string `json:"path"`
}

// MaxNameLen bounds pool names, so that volume IDs stay short.
const MaxNameLen = 32

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// Parse reads a pools file, strictly, in the native YAML or JSON form
// (unknown fields are errors) or as Mesos agent resources (ParseMesos, which
// needs the agent's work dir for the ROOT pool). The result is validated.
func Parse(data []byte, workDir string) (*Config, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("%w: the file is empty", ErrInvalidConfig)
	}
	if IsMesosResources(data) {
		return ParseMesos(data, workDir)
	}
	var c Config
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Load reads and parses a pools file (see Parse).
func Load(path, workDir string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidConfig, err)
	}
	c, err := Parse(data, workDir)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return c, nil
}

// Default is the embedded default: one ROOT pool named "root" under the
// state directory.
func Default(stateDir string) *Config {
	return &Config{Pools: []Spec{{Name: "root", Kind: Root, Path: filepath.Join(stateDir, "root")}}}
}

// Validate checks every pool and the relations between them, naming the first
// bad entry.
func (c *Config) Validate() error {
	if len(c.Pools) == 0 {
		return fmt.Errorf("%w: no pools configured", ErrInvalidConfig)
	}
	names := map[string]bool{}
	var roots []string // every pool path and disk path, to detect overlaps
	ids := map[string]string{}
	for i := range c.Pools {
		s := &c.Pools[i]
		bad := func(format string, a ...any) error {
			return fmt.Errorf("%w: pools[%d] (%q): %s", ErrInvalidConfig, i, s.Name, fmt.Sprintf(format, a...))
		}
		if !nameRE.MatchString(s.Name) || len(s.Name) > MaxNameLen {
			return bad("name must match %s and be at most %d characters", nameRE, MaxNameLen)
		}
		if names[s.Name] {
			return bad("duplicate pool name")
		}
		names[s.Name] = true
		if _, err := ParseKind(string(s.Kind)); err != nil {
			return bad("%v", err)
		}
		paths := []string{s.Path}
		if s.Kind.Directory() {
			if len(s.Disks) > 0 || s.ListUnclaimed {
				return bad("disks and listUnclaimed are for mount pools only")
			}
		} else {
			if s.Path != "" || s.Capacity != nil || s.Reserve != 0 {
				return bad("a mount pool has disks, not path, capacity or reserve")
			}
			if len(s.Disks) == 0 {
				return bad("a mount pool needs at least one disk")
			}
			paths = paths[:0]
			for j, d := range s.Disks {
				paths = append(paths, d.Path)
				id := DiskID(s.Name, d.Path)
				if prev, dup := ids[id]; dup {
					return bad("disks[%d]: path %q has the same volume ID as %q", j, d.Path, prev)
				}
				ids[id] = d.Path
			}
		}
		for _, p := range paths {
			if p == "" || !filepath.IsAbs(p) || filepath.Clean(p) != p || p == "/" {
				return bad("path %q must be absolute, clean and not /", p)
			}
			for _, o := range roots {
				if within(p, o) || within(o, p) {
					return bad("path %q overlaps %q", p, o)
				}
			}
			roots = append(roots, p)
		}
	}
	return nil
}

// within reports whether p is q or below q.
func within(p, q string) bool { return p == q || strings.HasPrefix(p, q+"/") }

// DiskID is the stable volume ID of a MOUNT pool's disk: the pool name and a
// slug of the disk's path (see slug). It is the same across restarts and
// reorderings of the pools file.
func DiskID(pool, path string) string {
	return pool + "-" + slug(path, 64)
}
