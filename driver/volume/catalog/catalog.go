// Package catalog is what the CSI services see of the volumes: a Volume
// made from a ready record or from a free disk of a MOUNT pool that lists
// its unclaimed disks (a Mesos pre-existing disk), found by ID (Lookup) or
// all of them (List, cached until what it lists changes). It reads the
// records through the index (volume/index); the Manager (driver/volume)
// owns them.
package catalog

import (
	"errors"
	"fmt"
	"sort"
	"sync"

	"github.com/localdisk-csi/localdisk/driver/capacity"
	"github.com/localdisk-csi/localdisk/driver/pool"
	"github.com/localdisk-csi/localdisk/driver/state"
	"github.com/localdisk-csi/localdisk/driver/volume/index"
	"github.com/localdisk-csi/localdisk/driver/volume/poolroot"
)

// Sentinel errors (volume's).
var (
	// ErrNotFound: no such volume.
	ErrNotFound = errors.New("volume not found")
	// ErrBusy: another operation on the volume is under way; retry later.
	ErrBusy = errors.New("operation pending for volume")
)

// Volume is what the CSI services see of a volume.
type Volume struct {
	ID       string
	Name     string // empty for an unclaimed MOUNT disk
	Pool     *poolroot.Pool
	Capacity int64
	Context  map[string]string
	// Claimed is false for a MOUNT disk listed as a pre-existing disk.
	Claimed bool
	// Block is set for a raw block volume.
	Block bool
}

// Device reports whether the volume is a device disk (formatted and mounted
// by localdisk, or used raw).
func (v *Volume) Device() bool {
	d := v.Pool.Disk(v.ID)
	return d != nil && d.IsDevice()
}

// FSType is the filesystem type a volume is served with: a device disk's
// (the one localdisk formats it with), or a directory volume's pool's
// filesystem; "" for a mounted MOUNT disk (any fs_type is taken as given).
func (v *Volume) FSType() string {
	if v.Pool.Kind.Directory() {
		return v.Pool.FSType()
	}
	if d := v.Pool.Disk(v.ID); d != nil && d.IsDevice() {
		return d.FSType
	}
	return ""
}

// Path is the canonical path of the volume's directory (for comparisons
// with the mount table).
func (v *Volume) Path() string { return v.Pool.VolumePath(v.ID) }

// WholeDisk reports a MOUNT volume on a disk given by path: the operator
// mounted its filesystem at the disk's path, and the volume is that mount's
// root. Such a volume is staged with its disk's mark (Manager.StageMark),
// not with a second mount of that root: kubelet refuses to unstage a
// staging path whose mount root is also mounted outside its own directory
// (GetDeviceMountRefs), and the operator's mount at the disk's path would be
// such a reference, so the volume could never be unstaged and its PVC never
// deleted. Its publish binds the disk's root itself.
func (v *Volume) WholeDisk() bool { return !v.Pool.Kind.Directory() && !v.Device() }

// Catalog finds the volumes of the records of Recs in the pools (by name,
// and in configuration order).
type Catalog struct {
	Recs   *index.Index
	Pools  map[string]*poolroot.Pool
	Order  []*poolroot.Pool
	listed listCache
}

// listCache keeps the last List answer until what it lists changes: the
// index (index.Index.Gen) or the free disks of a pool that lists them
// (pool.Pool.Gen: claims, disks measured late).
type listCache struct {
	mu   sync.Mutex
	key  listKey
	vols []*Volume
}

type listKey struct{ gen, pools uint64 }

// Of is what the CSI services see of a record: a new Volume, whose Context
// map is shared with the record and read-only.
func (c *Catalog) Of(r *state.Record) *Volume {
	return &Volume{ID: r.ID, Name: r.Name, Pool: c.Pools[r.Pool], Capacity: r.Capacity, Context: r.Context, Claimed: true, Block: r.Block}
}

// Lookup finds a usable volume by ID: a ready record, or a free disk of a
// MOUNT pool that lists its unclaimed disks (a Mesos pre-existing disk).
func (c *Catalog) Lookup(id string) (*Volume, error) {
	if r := c.Recs.Record(id); r != nil {
		if r.Phase != state.Ready {
			return nil, fmt.Errorf("%w: volume %s is %s", ErrBusy, id, r.Phase)
		}
		if c.Pools[r.Pool] == nil {
			return nil, fmt.Errorf("%w: volume %s: pool %q is no longer configured", capacity.ErrUnhealthy, id, r.Pool)
		}
		return c.Of(r), nil
	}
	if v := c.Unclaimed(id); v != nil {
		return v, nil
	}
	return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
}

// Unclaimed is the free disk id of a MOUNT pool that lists its unclaimed
// disks, or nil.
func (c *Catalog) Unclaimed(id string) *Volume {
	for _, p := range c.Order {
		if v := unclaimedIn(p, id); v != nil {
			return v
		}
	}
	return nil
}

func unclaimedIn(p *poolroot.Pool, id string) *Volume {
	if p.Kind != pool.Mount || !p.ListUnclaimed {
		return nil
	}
	d := p.Disk(id)
	if d == nil || d.ID != id || p.Claimed(id) { // an old claim's ID is not the free disk
		return nil
	}
	return &Volume{ID: d.ID, Pool: p, Capacity: d.Size(), Context: p.VolumeContext()}
}

// List returns every volume, sorted by ID: ready records, plus the
// unclaimed disks of pools that list them. The answer is cached until the
// index changes; callers must not modify it.
func (c *Catalog) List() []*Volume {
	c.listed.mu.Lock()
	defer c.listed.mu.Unlock()
	var key listKey
	for _, p := range c.Order { // read before what they count
		if p.ListUnclaimed {
			key.pools += p.Gen()
		}
	}
	if key.gen = c.Recs.Gen(); c.listed.vols != nil && c.listed.key == key {
		return c.listed.vols
	}
	out := []*Volume{}
	key.gen = c.Recs.Each(func(r *state.Record) {
		if r.Phase == state.Ready {
			out = append(out, c.Of(r))
		}
	})
	for _, p := range c.Order {
		for _, d := range p.Disks {
			if v := unclaimedIn(p, d.ID); v != nil {
				out = append(out, v)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	c.listed.key, c.listed.vols = key, out
	return out
}
