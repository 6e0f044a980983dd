package mounts

import (
	"fmt"
	"slices"

	"github.com/moby/sys/mountinfo"

	"github.com/localdisk-csi/localdisk/driver/mounter"
	"github.com/localdisk-csi/localdisk/driver/volume"
)

// readTable reads the mount table.
func (m *Mounts) readTable() (mounter.Table, error) {
	t, err := m.m.ReadTable()
	if err != nil {
		return nil, fmt.Errorf("%v", err)
	}
	return t, nil
}

// snapshot reads the mount table and what a mount of the volume shows (its
// directory, its device's filesystem, or its device node if block).
func (m *Mounts) snapshot(v *volume.Volume, block bool) (mounter.Table, mounter.Source, error) {
	t, err := m.readTable()
	if err != nil {
		return nil, mounter.Source{}, err
	}
	src, err := m.vols.Source(t, v, block)
	if err != nil {
		return nil, mounter.Source{}, err
	}
	return t, src, nil
}

// mountedHere reports whether the volume is mounted at p already (a
// retried call: done), with the read-only flag asked for if ro is set; a
// mount of something else there, or with the other flag, is an error.
func mountedHere(t mounter.Table, p, field, id string, src mounter.Source, ro *bool) (done bool, err error) {
	e := t.At(p)
	switch {
	case e == nil:
		return false, nil
	case mounter.SourceOf(e) != src:
		return false, fmt.Errorf("%w: something else is mounted at %s %s", ErrForeignMount, field, p)
	case ro != nil && mounter.ReadOnly(e) != *ro:
		return false, fmt.Errorf("%w: volume %s is published at %s with readonly=%v", ErrReadOnlyMismatch, id, p, !*ro)
	}
	return true, nil
}

// singleWriter fails a SINGLE_NODE_SINGLE_WRITER publish while the volume
// (its directory or device at path, shown as src) is published at another
// target.
func singleWriter(t mounter.Table, path string, src mounter.Source, c Capability, staging, target string) error {
	if !c.SingleWriter {
		return nil
	}
	for _, u := range t.Uses(path, src) {
		if u.Mountpoint != staging && u.Mountpoint != target {
			return fmt.Errorf("%w: volume %s is SINGLE_NODE_SINGLE_WRITER and already published at %s", ErrSingleWriter, path, u.Mountpoint)
		}
	}
	return nil
}

// stagedBy reports whether the mount e at a staging path stages volume v:
// it shows one of the volume's StageSources (staged), or, for a whole disk,
// the disk's root (old: how versions before the staging mark staged it;
// kubelet never unstages that, so a stage replaces it with the mark).
func (m *Mounts) stagedBy(t mounter.Table, v *volume.Volume, e *mountinfo.Info) (staged, old bool, err error) {
	srcs, err := m.vols.StageSources(t, v)
	if err != nil {
		return false, false, err
	}
	if slices.Contains(srcs, mounter.SourceOf(e)) {
		return true, false, nil
	}
	if !v.WholeDisk() {
		return false, false, nil
	}
	root, err := m.vols.Source(t, v, false)
	return false, err == nil && mounter.SourceOf(e) == root, nil
}

// sources lists what a mount of the volume shows: its directory or its
// device's filesystem, its device node, and for a whole disk its staging
// mark (StageSources). ok is false when one of them cannot be told (its
// disk is gone).
func (m *Mounts) sources(t mounter.Table, v *volume.Volume) (out []mounter.Source, ok bool) {
	for _, block := range []bool{false, true} {
		src, err := m.vols.Source(t, v, block)
		if err != nil {
			return nil, false
		}
		out = append(out, src)
	}
	if v.WholeDisk() {
		srcs, err := m.vols.StageSources(t, v)
		if err != nil {
			return nil, false
		}
		out = append(out, srcs...)
	}
	return out, true
}

// notAnother refuses to unmount at p a mount that is not volume id's when
// the volume is known and its mounts can be told (a CO mixing up its
// paths would otherwise take another volume from its pod). An unknown or
// deleted volume, or one whose disk cannot be found, is unmounted as asked,
// so that a CO can always clean up.
func (m *Mounts) notAnother(id, p, field string) error {
	v, err := m.vols.Lookup(id)
	if err != nil {
		return nil
	}
	// The common case without reading the mount table: the path is a bind
	// of the volume's directory.
	if dir := v.Path(); dir != "" && !v.Device() && m.m.SameFile(p, dir) {
		return nil
	}
	t, err := m.m.ReadTable()
	if err != nil {
		return nil
	}
	var stack []*mountinfo.Info // every mount at p, stacked ones too
	for _, e := range t {
		if e.Mountpoint == p {
			stack = append(stack, e)
		}
	}
	if len(stack) == 0 {
		return nil
	}
	srcs, ok := m.sources(t, v)
	if !ok {
		return nil
	}
	for _, src := range srcs {
		for _, e := range stack {
			if mounter.SourceOf(e) == src {
				return nil
			}
		}
	}
	return fmt.Errorf("%w: %s %s holds another mount than volume %s's: not unmounted", ErrForeignMount, field, p, id)
}
