package mounts

import (
	"context"
	"fmt"

	"github.com/localdisk-csi/localdisk/driver/failpoint"
	"github.com/localdisk-csi/localdisk/driver/volume"
)

// Publish binds the volume staged at the staging path at the target, which
// it creates (the CO makes the target's parent, CSI says; the plugin makes
// the target itself, and nothing else); read-only when ro is set or the
// access mode only reads. A raw block volume's device node is bound on a
// target file instead. Published there already: nothing is done
// (idempotent).
func (m *Mounts) Publish(ctx context.Context, id, staging, target string, c Capability, ro bool) error {
	ro = ro || c.ReadOnlyMode
	if err := CheckPath(target, "target_path"); err != nil {
		return err
	}
	if err := CheckPath(staging, "staging_target_path"); err != nil {
		return err
	}
	if _, err := m.vols.Lookup(id); err != nil { // NotFound before any path error
		return err
	}
	target, err := m.canonical(target, "target_path")
	if err != nil {
		return err
	}
	if staging, err = m.canonical(staging, "staging_target_path"); err != nil {
		return err
	}
	v, unlock, err := m.lockVolume(ctx, id, target, c)
	if err != nil {
		return err
	}
	defer unlock()
	if c.Block {
		return m.publishBlock(v, target, ro, c)
	}
	// The common case without the mount table: a ROOT or PATH volume
	// recorded staged here, nothing yet at the target, and no
	// single-writer mode to check against the volume's other mounts.
	recorded := m.staged.Has(id, staging)
	fast := !v.Device() && !c.SingleWriter && recorded && m.m.NotMounted(target)
	if !fast {
		t, src, err := m.snapshot(v, false)
		if err != nil {
			return err
		}
		if e := t.At(staging); e == nil && !recorded {
			return fmt.Errorf("%w: volume %s is not staged at %s", ErrNotStaged, id, staging)
		} else if e != nil && !recorded {
			if staged, old, err := m.stagedBy(t, v, e); err != nil {
				return err
			} else if !staged && !old {
				return fmt.Errorf("%w: volume %s is not staged at %s", ErrNotStaged, id, staging)
			}
		}
		if done, err := mountedHere(t, target, "target_path", id, src, &ro); done || err != nil {
			return err
		}
		if err := singleWriter(t, v.Path(), src, c, staging, target); err != nil {
			return err
		}
	}
	// The group is for writers: a read-only publish (another pod reading
	// the volume) leaves the volume's ownership to those who write to it.
	if c.MountGroup != "" && !v.Device() && !ro {
		dir, err := m.vols.OpenDir(v)
		if err != nil {
			return err
		}
		err = applyMountGroup(dir, c.MountGroup)
		dir.Close()
		if err != nil {
			return err
		}
	}
	if err := makeDir(target); err != nil {
		return err
	}
	if err := m.bindTarget(v, staging, target, ro); err != nil {
		return err
	}
	failpoint.Inject(failpoint.PublishMounted)
	return nil
}

// bindTarget binds a volume at its target: a directory volume from its
// directory (OpenDir checks a whole disk given by path is still the
// volume's filesystem), since its staging path shows only its mark or
// nothing at all; a device disk's filesystem from its staging mount.
func (m *Mounts) bindTarget(v *volume.Volume, staging, target string, ro bool) error {
	var err error
	if !v.Device() {
		dir, derr := m.vols.OpenDir(v)
		if derr != nil {
			return derr
		}
		err = m.m.BindDir(dir, target, ro)
		dir.Close()
	} else {
		err = m.m.BindPath(staging, target, ro)
	}
	if err != nil {
		return fmt.Errorf("publish volume %s: %v", v.ID, err)
	}
	return nil
}
