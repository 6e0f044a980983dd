package volume

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sync"

	"github.com/sirupsen/logrus"

	"github.com/localdisk-csi/localdisk/driver/pool"
	"github.com/localdisk-csi/localdisk/driver/quota"
	"github.com/localdisk-csi/localdisk/driver/state"
)

// How a ROOT/PATH pool enforces its volumes' capacities.
const (
	enforceNone    = ""        // accounting only; usage is measured
	enforceProject = "project" // XFS/ext4 project quota per volume directory
	enforceBtrfs   = "btrfs"   // a btrfs subvolume with a qgroup limit per volume
)

// quotas holds the project ID allocators, one per filesystem.
type quotas struct {
	mu     sync.Mutex
	allocs map[uint64]*quota.Allocator // by st_dev
}

// Enforcement says how the pool enforces capacities ("" when it does not).
func (p *Pool) Enforcement() string {
	e, _ := p.enforce.Load().(string)
	return e
}

// setupQuota decides, once per pool, how it enforces capacities: project
// quotas where its filesystem enforces them, btrfs qgroups where quotas are
// enabled (quota: required enables them), else accounting only. A pool with
// `quota: required` and no enforcement is unhealthy.
func (m *Manager) setupQuota(p *Pool, root *os.Root) error {
	if !p.Kind.Directory() || p.Enforcement() != "" || p.Spec.Quota == pool.QuotaOff {
		return nil
	}
	var reason error
	err := withFS(root, ".", func(dir *os.File, qfs *quota.FS) error {
		reason = m.enforcement(p, dir, qfs)
		return nil
	})
	if err != nil {
		return err
	}
	if reason != nil && p.Spec.Quota == pool.QuotaRequired {
		return fmt.Errorf("%w: pool %q: quota: required, but %v", ErrUnhealthy, p.Name, reason)
	}
	if reason != nil && !p.quotaLogged.Swap(true) {
		m.log.WithField("pool", p.Name).WithError(reason).Info("capacity is accounted, not enforced: usage is measured")
	}
	return nil
}

// enforcement sets the pool's enforcement from its filesystem, or says why
// it has none.
func (m *Manager) enforcement(p *Pool, dir *os.File, qfs *quota.FS) (reason error) {
	d := DecideQuota(p.Spec, dir, qfs)
	if d.EnableBtrfs {
		if err := quota.EnableQuota(dir); err != nil {
			return err
		}
	}
	switch d.Method {
	case enforceProject:
		m.allocator(p, qfs.Dev())
		m.log.WithFields(logrus.Fields{"pool": p.Name, "commands": qfs.Commands()}).Info("capacity is enforced by project quota")
	case enforceNone:
		return d.Reason
	}
	p.enforce.Store(d.Method)
	return nil
}

// QuotaDecision is how a ROOT/PATH pool will enforce its volumes'
// capacities, as decided from its filesystem (see DecideQuota).
type QuotaDecision struct {
	// Method is "project" (XFS/ext4 project quota), "btrfs" (qgroups) or ""
	// (accounting only).
	Method string
	// EnableBtrfs: btrfs quotas are off and `quota: required` turns them on.
	EnableBtrfs bool
	// Reason says why Method is "".
	Reason error
}

// DecideQuota decides, without changing anything, how a ROOT/PATH pool
// whose `quota` is not off enforces capacities on the filesystem of dir:
// project quotas where XFS/ext4 enforces them (mounted with prjquota),
// qgroups where btrfs quotas are enabled (or will be: `quota: required`),
// else accounting only, with the reason.
func DecideQuota(spec pool.Spec, dir *os.File, qfs *quota.FS) QuotaDecision {
	switch qfs.Kind() {
	case quota.KindXFS, quota.KindExt4:
		if reason := qfs.Supported(); reason != nil {
			return QuotaDecision{Reason: reason}
		}
		return QuotaDecision{Method: enforceProject}
	case quota.KindBtrfs:
		on, err := quota.QuotaEnabled(dir)
		switch {
		case err != nil:
			return QuotaDecision{Reason: err}
		case !on && spec.Quota == pool.QuotaRequired:
			return QuotaDecision{Method: enforceBtrfs, EnableBtrfs: true}
		case !on:
			return QuotaDecision{Reason: fmt.Errorf("%w: btrfs quotas are not enabled on %s (quota: required enables them)", quota.ErrNotSupported, canonicalDir(spec.Path))}
		}
		return QuotaDecision{Method: enforceBtrfs}
	}
	return QuotaDecision{Reason: fmt.Errorf("%w: %s is on %s", quota.ErrNotSupported, canonicalDir(spec.Path), qfs.Kind())}
}

// withFS opens name inside root and a quota handle on it for fn.
func withFS(root *os.Root, name string, fn func(dir *os.File, qfs *quota.FS) error) error {
	dir, err := root.Open(name)
	if err != nil {
		return err
	}
	defer dir.Close()
	qfs, err := quota.NewFS(dir)
	if err != nil {
		return err
	}
	defer qfs.Close()
	return fn(dir, qfs)
}

// allocator returns the project ID allocator of a filesystem, making it on
// first use with every project ID the records hold marked used; an ID found
// in use on the filesystem by something else is never handed out.
func (m *Manager) allocator(p *Pool, dev uint64) *quota.Allocator {
	m.quotas.mu.Lock()
	defer m.quotas.mu.Unlock()
	if a := m.quotas.allocs[dev]; a != nil {
		p.alloc.Store(a)
		return a
	}
	dir := filepath.Join(p.dir, dataDir)
	a, _ := quota.NewAllocator(quota.DefaultFirstID, quota.DefaultLastID, func(id uint32) (bool, error) {
		qfs, err := quota.Open(dir)
		if err != nil {
			return false, err
		}
		defer qfs.Close()
		return qfs.InUse(id)
	})
	for _, r := range m.Records() {
		a.MarkUsed(r.ProjectID)
	}
	if m.quotas.allocs == nil {
		m.quotas.allocs = map[uint64]*quota.Allocator{}
	}
	m.quotas.allocs[dev] = a
	p.alloc.Store(a)
	return a
}

// allocProject reserves a project ID for a new volume of a project-quota
// pool (0 for other pools).
func (m *Manager) allocProject(p *Pool) (uint32, error) {
	if p.Enforcement() != enforceProject {
		return 0, nil
	}
	a, _ := p.alloc.Load().(*quota.Allocator)
	if a == nil {
		return 0, fmt.Errorf("pool %q: no project ID allocator", p.Name)
	}
	id, err := a.Allocate()
	if errors.Is(err, quota.ErrExhausted) {
		return 0, fmt.Errorf("%w: pool %q: %v", pool.ErrInsufficientCapacity, p.Name, err)
	}
	return id, err
}

// releaseProject gives a project ID back once no record holds it.
func (m *Manager) releaseProject(p *Pool, id uint32) {
	if a, _ := p.alloc.Load().(*quota.Allocator); a != nil && id != 0 {
		a.Release(id)
	}
}

// makeVolumeDir makes a volume's directory (a btrfs subvolume where the
// pool uses qgroups) and sets its limit; idempotent, for retries.
func (m *Manager) makeVolumeDir(root *os.Root, p *Pool, rec *state.Record) error {
	dir := path.Join(volumesDir, rec.ID)
	if p.Enforcement() == enforceBtrfs {
		parent, err := root.Open(volumesDir)
		if err != nil {
			return err
		}
		defer parent.Close()
		if err := quota.CreateSubvolume(parent, rec.ID); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	} else if err := root.Mkdir(dir, volumeMode); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	fi, err := root.Lstat(dir)
	if err == nil && !fi.IsDir() {
		err = fmt.Errorf("%s exists and is not a directory", dir)
	}
	if err == nil {
		err = root.Chmod(dir, volumeMode) // Mkdir's mode is masked by umask
	}
	if err != nil {
		return err
	}
	sub, err := m.applyLimit(root, p, rec)
	if sub != 0 {
		rec.Subvolume = sub // rec is not indexed yet: its record follows
	}
	return err
}

// reapplyLimitOf re-applies the limit of a volume already recorded (rec is
// the caller's copy of its record): start-up and expansion. A subvolume ID
// other than the recorded one is recorded anew.
func (m *Manager) reapplyLimitOf(root *os.Root, p *Pool, rec *state.Record) error {
	sub, err := m.applyLimit(root, p, rec)
	if err != nil || sub == 0 || sub == rec.Subvolume {
		return err
	}
	rec.Subvolume = sub
	return m.put(rec)
}

// applyLimit (re)applies a volume's capacity as its quota: the project and
// its limit, or the subvolume's qgroup limit, returning the subvolume's ID
// (0 when the pool does not use qgroups). It changes no record.
// Idempotent: start-up and expansion call it again.
func (m *Manager) applyLimit(root *os.Root, p *Pool, rec *state.Record) (subvolume uint64, err error) {
	switch {
	case p.Enforcement() == enforceProject && rec.ProjectID != 0:
		return 0, withFS(root, path.Join(volumesDir, rec.ID), func(f *os.File, qfs *quota.FS) error {
			if err := quota.SetProject(f, rec.ProjectID); err != nil {
				return err
			}
			return qfs.SetLimit(rec.ProjectID, quota.Limits{Bytes: uint64(rec.Capacity), Inodes: uint64(p.VolumeInodes)})
		})
	case p.Enforcement() == enforceBtrfs:
		f, err := root.Open(path.Join(volumesDir, rec.ID))
		if err != nil {
			return 0, err
		}
		defer f.Close()
		id, err := quota.SubvolumeID(f)
		if err != nil {
			return 0, err
		}
		return id, quota.SetQgroupLimit(f, id, uint64(rec.Capacity))
	}
	return 0, nil
}

// removeVolumeDir removes a volume's directory in the trash: a subvolume
// is deleted as such; then its project's limit is cleared.
func (m *Manager) removeVolumeDir(root *os.Root, p *Pool, rec *state.Record, trash string) error {
	if rec.Subvolume != 0 {
		parent, err := root.Open(trashDir)
		if err != nil {
			return err
		}
		err = quota.DeleteSubvolume(parent, rec.ID)
		parent.Close()
		if err != nil && !errors.Is(err, quota.ErrNotFound) {
			return err
		}
	} else if err := root.RemoveAll(trash); err != nil {
		return err
	}
	return m.clearProject(root, p, rec.ProjectID)
}

// clearProject clears a released project's limit.
func (m *Manager) clearProject(root *os.Root, p *Pool, id uint32) error {
	if id == 0 || p.Enforcement() != enforceProject {
		return nil
	}
	return withFS(root, ".", func(_ *os.File, qfs *quota.FS) error { return qfs.ClearLimit(id) })
}

// projectUsage is a project-quota volume's own usage as the quota counts it.
func (m *Manager) projectUsage(dir *os.File, id uint32) (Usage, error) {
	qfs, err := quota.NewFS(dir)
	if err != nil {
		return Usage{}, err
	}
	defer qfs.Close()
	u, err := qfs.Usage(id)
	if err != nil {
		return Usage{}, err
	}
	return Usage{Bytes: int64(u.Bytes), Inodes: int64(u.Inodes), InodeLimit: int64(u.Limits.Inodes), Exact: true}, nil
}

// removeOrphan removes an empty volume directory that no record owns (a
// create that crashed before its record): the subvolume, or the directory
// and its project's limit. A directory that holds anything is kept.
func (m *Manager) removeOrphan(root *os.Root, p *Pool, id string) error {
	dir := path.Join(volumesDir, id)
	f, err := root.Open(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	names, _ := f.Readdirnames(1)
	project, _, _ := quota.Project(f)
	f.Close()
	if len(names) > 0 {
		return fmt.Errorf("%s is not empty: kept", dir)
	}
	if p.Enforcement() == enforceBtrfs {
		parent, err := root.Open(volumesDir)
		if err != nil {
			return err
		}
		err = quota.DeleteSubvolume(parent, id)
		parent.Close()
		if err != nil && !errors.Is(err, quota.ErrNotFound) {
			return err
		}
	} else if err := root.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return m.clearProject(root, p, project)
}
