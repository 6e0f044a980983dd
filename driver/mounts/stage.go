package mounts

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/localdisk-csi/localdisk/driver/failpoint"
	"github.com/localdisk-csi/localdisk/driver/mounter"
	"github.com/localdisk-csi/localdisk/driver/volume"
)

// Stage makes volume id available at the staging path (an existing empty
// directory, or one it creates): a staging record for a ROOT or PATH
// volume (no mount), a bind of a whole disk's staging mark, or a device
// disk's filesystem (formatted first only if blank); nothing for raw block
// access. The volume's group
// is set for c.MountGroup. Staged already: nothing is done (idempotent).
func (m *Mounts) Stage(ctx context.Context, id, staging string, c Capability) error {
	staging, err := m.canonical(staging, "staging_target_path")
	if err != nil {
		return err
	}
	v, unlock, err := m.lockVolume(ctx, id, staging, c)
	if err != nil {
		return err
	}
	defer unlock()
	// A ROOT or PATH volume staged here has no mount that would refuse
	// another volume: its staging record does, for every kind.
	if other, ok := m.staged.At(staging); ok && other != v.ID {
		return fmt.Errorf("%w: volume %s is staged at staging_target_path %s", ErrForeignMount, other, staging)
	}
	if v.Device() {
		return m.stageDevice(ctx, v, staging, c)
	}
	dir, err := m.vols.OpenDir(v)
	if err != nil {
		return err
	}
	defer dir.Close()
	if err := applyMountGroup(dir, c.MountGroup); err != nil {
		return err
	}
	if staged, err := m.atStaging(v, staging); err != nil || staged {
		return err
	}
	if err := makeDir(staging); err != nil {
		return err
	}
	if v.WholeDisk() { // staged with its mark: see volume.Volume.WholeDisk
		mark, err := m.vols.StageMark(v)
		if err != nil {
			return fmt.Errorf("stage volume %s: %v", id, err)
		}
		defer mark.Close()
		if err := m.m.BindDir(mark, staging, false); err != nil {
			return fmt.Errorf("stage volume %s: %v", id, err)
		}
	} else if err := m.staged.Add(v.ID, staging); err != nil {
		// A ROOT or PATH volume is staged without a mount: its staging
		// record (stagemark.Records) says where; publish binds its
		// directory itself.
		return fmt.Errorf("stage volume %s: %v", id, err)
	}
	failpoint.Inject(failpoint.StageMounted)
	return nil
}

// atStaging decides from what is mounted at a directory volume's staging
// path: nothing (go on), the volume staged there already (staged: its
// directory bound there, as versions before the staging records did, or
// its disk's mark), a whole disk staged before its mark (its disk's root:
// unmounted here, to be replaced; its publishes are mounts of their own),
// or anything else (ErrForeignMount).
func (m *Mounts) atStaging(v *volume.Volume, staging string) (staged bool, err error) {
	if m.m.NotMounted(staging) { // nothing is there: no need for the mount table
		return false, nil
	}
	t, err := m.readTable()
	if err != nil {
		return false, err
	}
	e := t.At(staging)
	if e == nil {
		return false, nil
	}
	staged, old, err := m.stagedBy(t, v, e)
	switch {
	case err != nil:
		return false, err
	case staged:
		return true, nil
	case !old:
		return false, fmt.Errorf("%w: something else is mounted at staging_target_path %s", ErrForeignMount, staging)
	}
	if err := m.m.UnmountAll(staging); err != nil {
		return false, fmt.Errorf("%v", err)
	}
	return false, nil
}

// Unstage unmounts the staging path and keeps the directory, and drops the
// volume's staging record there. See unmount for what it refuses; nothing
// there is not an error (idempotent).
func (m *Mounts) Unstage(ctx context.Context, id, staging string) error {
	return m.unmount(ctx, id, staging, "staging_target_path", func(p string) error {
		failpoint.Inject(failpoint.UnstageUnmntd)
		return m.staged.Remove(id, p)
	})
}

// Unpublish unmounts the target and removes it. It never removes a target
// that still has something mounted or still holds files: it fails instead,
// so no data is ever deleted through it. A raw device published read-only
// is made writable again once no read-only publish of it is left.
func (m *Mounts) Unpublish(ctx context.Context, id, target string) error {
	return m.unmount(ctx, id, target, "target_path", func(target string) error {
		failpoint.Inject(failpoint.UnpublishUnmntd)
		if err := removeTarget(target); err != nil {
			return err
		}
		return m.releaseBlock(id)
	})
}

// unmount removes every mount at a CO path under the volume's and the path's
// locks, then calls then with the canonical path, still locked. A path whose
// parent is gone has nothing mounted: it is done. A mount that is not the
// volume's (notAnother) is left alone.
func (m *Mounts) unmount(ctx context.Context, id, p, field string, then func(string) error) error {
	if err := CheckPath(p, field); err != nil {
		return err
	}
	p, err := mounter.Canonical(p)
	if errors.Is(err, fs.ErrNotExist) { // nothing mounted; a record of it goes
		return m.dropGone(ctx, id, p)
	} else if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrBadPath, field, err)
	}
	if err := m.vols.Protected(p); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrBadPath, field, err)
	}
	unlock, err := m.vols.Lock(ctx, volume.IDKey(id), volume.PathKey(p))
	if err != nil {
		return err
	}
	defer unlock()
	if !m.m.NotMounted(p) { // else neither the mount table nor umount is needed
		if err := m.notAnother(id, p, field); err != nil {
			return err
		}
		if err := m.m.UnmountAll(p); err != nil {
			return fmt.Errorf("%v", err)
		}
	}
	return then(p)
}

// dropGone drops volume id's staging records at a path that is gone (the
// CO removed its staging directory first): at p as asked, cleaned, and
// below its parent's canonical path when that still exists.
func (m *Mounts) dropGone(ctx context.Context, id, p string) error {
	p = filepath.Clean(p)
	paths := []string{p}
	if parent, err := mounter.Canonical(filepath.Dir(p)); err == nil {
		paths = append(paths, filepath.Join(parent, filepath.Base(p)))
	}
	unlock, err := m.vols.Lock(ctx, volume.IDKey(id))
	if err != nil {
		return err
	}
	defer unlock()
	for _, q := range paths {
		if err := m.staged.Remove(id, q); err != nil {
			return err
		}
	}
	return nil
}

// lockVolume takes volume id's and CO path p's locks, then looks the volume
// up and checks that it can serve c; the caller unlocks.
func (m *Mounts) lockVolume(ctx context.Context, id, p string, c Capability) (*volume.Volume, func(), error) {
	unlock, err := m.vols.Lock(ctx, volume.IDKey(id), volume.PathKey(p))
	if err != nil {
		return nil, nil, err
	}
	v, err := m.vols.Lookup(id)
	if err == nil {
		err = c.serves(v)
	}
	if err != nil {
		unlock()
		return nil, nil, err
	}
	return v, unlock, nil
}
