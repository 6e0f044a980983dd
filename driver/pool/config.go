package pool

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"unicode"

	"github.com/localdisk-csi/localdisk/driver/layout"
)

// Config is the pools file: `pools:` followed by a list of pools.
type Config struct {
	Pools []Spec `json:"pools" yaml:"pools"`
}

// Spec is one pool as configured.
type Spec struct {
	// Name identifies the pool in parameters (`pool: NAME`) and records.
	Name string `json:"name" yaml:"name"`
	// Kind is root, path or mount.
	Kind Kind `json:"kind" yaml:"kind"`
	// Path is the pool's root directory (ROOT and PATH pools).
	Path string `json:"path,omitempty" yaml:"path,omitempty"`
	// Capacity caps what the pool hands out (ROOT and PATH), in bytes or
	// as a percentage of its filesystem; default: the filesystem's size
	// minus the reserve.
	Capacity *Amount `json:"capacity,omitempty" yaml:"capacity,omitempty"`
	// Reserve is kept free on the pool's filesystem (ROOT and PATH), in
	// bytes or as a percentage of its size: what the pool offers is never
	// more than the filesystem's free space minus it. Default: a ROOT
	// pool's DefaultRootReserve, none for a PATH pool (a disk of its own).
	Reserve *Amount `json:"reserve,omitempty" yaml:"reserve,omitempty"`
	// Quota says how a ROOT or PATH pool enforces its volumes' capacities:
	// auto (default: project quotas on XFS/ext4 mounted with prjquota,
	// qgroups on btrfs, accounting only elsewhere), required (the pool is
	// unhealthy without enforcement) or off.
	Quota QuotaMode `json:"quota,omitempty" yaml:"quota,omitempty"`
	// VolumeInodes limits the inodes of each volume where quotas are
	// enforced by project (0: no limit).
	VolumeInodes int64 `json:"volumeInodes,omitempty" yaml:"volumeInodes,omitempty"`
	// Snapshots, set to copy, lets a ROOT or PATH pool whose filesystem
	// can neither snapshot (btrfs subvolumes) nor share data (reflink)
	// make snapshots and clones by a full copy of the data. Empty: such a
	// pool refuses them.
	Snapshots SnapshotMode `json:"snapshots,omitempty" yaml:"snapshots,omitempty"`
	// ListUnclaimed lists the free disks of a MOUNT pool in ListVolumes, as
	// Mesos wants for pre-existing disks.
	ListUnclaimed bool `json:"listUnclaimed,omitempty" yaml:"listUnclaimed,omitempty"`
	// Disks are the whole disks of a MOUNT pool.
	Disks []DiskSpec `json:"disks,omitempty" yaml:"disks,omitempty"`
	// Erase says how a MOUNT pool's device disk is erased when its volume
	// is deleted: none (its filesystem is re-created), zero (zeros written
	// over the whole device) or discard (BLKDISCARD). Default none.
	Erase Erase `json:"erase,omitempty" yaml:"erase,omitempty"`
	// Optional says that a node may lack the pool (PATH and MOUNT): where
	// its path does not exist, or none of its disks is there, and no volume
	// was made in it, the pool is absent rather than unhealthy.
	Optional bool `json:"optional,omitempty" yaml:"optional,omitempty"`
}

// QuotaMode is a ROOT/PATH pool's quota setting.
type QuotaMode string

// The quota modes.
const (
	QuotaAuto     QuotaMode = "auto"
	QuotaRequired QuotaMode = "required"
	QuotaOff      QuotaMode = "off"
)

// SnapshotMode is a ROOT/PATH pool's snapshots setting.
type SnapshotMode string

// SnapshotsCopy allows snapshots and clones by full copy.
const SnapshotsCopy SnapshotMode = "copy"

// Erase is a MOUNT pool's erase method.
type Erase string

// The erase methods.
const (
	EraseNone    Erase = "none"
	EraseZero    Erase = "zero"
	EraseDiscard Erase = "discard"
)

// The filesystems localdisk formats device disks with.
const (
	FSExt4 = "ext4"
	FSXFS  = "xfs"
)

// DiskSpec is one whole disk of a MOUNT pool: a filesystem the operator
// mounted (Path), or a block device that localdisk formats when blank and
// mounts itself (Device, FSType, MkfsOptions).
type DiskSpec struct {
	// Path is where the operator mounted the disk's filesystem.
	Path string `json:"path,omitempty" yaml:"path,omitempty"`
	// Device is the block device, preferably a stable name
	// (/dev/disk/by-id/...).
	Device string `json:"device,omitempty" yaml:"device,omitempty"`
	// FSType is the filesystem made on a blank device: ext4 or xfs.
	FSType string `json:"fsType,omitempty" yaml:"fsType,omitempty"`
	// MkfsOptions are extra arguments for mkfs.
	MkfsOptions []string `json:"mkfsOptions,omitempty" yaml:"mkfsOptions,omitempty"`
}

// Source is the disk's configured path or device.
func (d DiskSpec) Source() string {
	if d.Device != "" {
		return d.Device
	}
	return d.Path
}

// MaxNameLen bounds pool names, so that volume IDs stay short.
const MaxNameLen = 32

var nameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)

// Parse reads a pools file, strictly, in the native YAML or JSON form
// (unknown fields are errors; decoding errors name their line and column) or as Mesos agent resources (ParseMesos, which
// needs the agent's work dir for the ROOT pool). The result is validated.
func Parse(data []byte, workDir string) (*Config, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, fmt.Errorf("%w: the file is empty", ErrInvalidConfig)
	}
	if IsMesosResources(data) {
		return ParseMesos(data, workDir)
	}
	return parseNative(data)
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
	return &Config{Pools: []Spec{{Name: "root", Kind: Root, Path: filepath.Join(stateDir, layout.DefaultRootDir)}}}
}

// ReserveOf is what the pool keeps free on a filesystem of size bytes.
func (s Spec) ReserveOf(size int64) int64 {
	switch {
	case s.Reserve != nil:
		return s.Reserve.Of(size)
	case s.Kind == Root:
		return DefaultRootReserve.Of(size)
	}
	return 0
}

// CapacityOf is what the pool may hand out on a filesystem of size bytes:
// its capacity, or the filesystem's size minus the reserve.
func (s Spec) CapacityOf(size int64) int64 {
	if s.Capacity != nil {
		return s.Capacity.Of(size)
	}
	return max(size-s.ReserveOf(size), 0)
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
		if s.Optional && s.Kind == Root {
			return bad("optional is for path and mount pools: a root pool's directory is made at start")
		}
		for field, a := range map[string]*Amount{"capacity": s.Capacity, "reserve": s.Reserve} {
			if a != nil {
				if err := a.check(field); err != nil {
					return bad("%v", err)
				}
			}
		}
		paths := []string{s.Path}
		if s.Kind.Directory() {
			if len(s.Disks) > 0 || s.ListUnclaimed || s.Erase != "" {
				return bad("disks, listUnclaimed and erase are for mount pools only")
			}
			switch s.Quota {
			case "", QuotaAuto, QuotaRequired, QuotaOff:
			default:
				return bad("quota %q: want auto, required or off", s.Quota)
			}
			if s.VolumeInodes < 0 {
				return bad("volumeInodes must not be negative")
			}
			if s.Snapshots != "" && s.Snapshots != SnapshotsCopy {
				return bad("snapshots %q: want copy, or leave it out", s.Snapshots)
			}
		} else {
			if s.Path != "" || s.Capacity != nil || s.Reserve != nil || s.Quota != "" || s.VolumeInodes != 0 || s.Snapshots != "" {
				return bad("a mount pool has disks, not path, capacity, reserve, quota or snapshots")
			}
			switch s.Erase {
			case "", EraseNone, EraseZero, EraseDiscard:
			default:
				return bad("erase %q: want none, zero or discard", s.Erase)
			}
			if len(s.Disks) == 0 {
				return bad("a mount pool needs at least one disk")
			}
			paths = paths[:0]
			for j, d := range s.Disks {
				if err := d.validate(); err != nil {
					return bad("disks[%d]: %v", j, err)
				}
				paths = append(paths, d.Source())
				id := layout.DiskID(s.Name, d.Source())
				if prev, dup := ids[id]; dup {
					return bad("disks[%d]: %q has the same volume ID as %q", j, d.Source(), prev)
				}
				ids[id] = d.Source()
			}
		}
		for _, p := range paths {
			if p == "" || !filepath.IsAbs(p) || filepath.Clean(p) != p || p == "/" {
				return bad("path %q must be absolute, clean and not /", p)
			}
			if strings.IndexFunc(p, func(r rune) bool { return !unicode.IsGraphic(r) }) >= 0 {
				return bad("path %q must have only printable characters", p)
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

// validate checks one disk: a path, or a device with its filesystem type.
func (d DiskSpec) validate() error {
	switch {
	case d.Path != "" && d.Device != "":
		return fmt.Errorf("give path or device, not both")
	case d.Device == "" && (d.FSType != "" || len(d.MkfsOptions) > 0):
		return fmt.Errorf("fsType and mkfsOptions are for device disks")
	case d.Device == "":
		return nil
	case !strings.HasPrefix(d.Device, "/dev/"):
		return fmt.Errorf("device %q must be under /dev", d.Device)
	case d.FSType != FSExt4 && d.FSType != FSXFS:
		return fmt.Errorf("device %q: fsType %q: want ext4 or xfs", d.Device, d.FSType)
	}
	for _, o := range d.MkfsOptions {
		if strings.ContainsRune(o, 0) {
			return fmt.Errorf("device %q: mkfsOptions contain a NUL byte", d.Device)
		}
	}
	return nil
}

// within reports whether p is q or below q.
func within(p, q string) bool { return p == q || strings.HasPrefix(p, q+"/") }
