package capacity

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sync"

	"github.com/sirupsen/logrus"

	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/pool"
	"github.com/localdisk-csi/localdisk/driver/quota"
	"github.com/localdisk-csi/localdisk/driver/state"
)

// How a ROOT/PATH pool enforces its volumes' capacities.
const (
	EnforceNone    = ""        // accounting only; usage is measured
	EnforceProject = "project" // XFS/ext4 project quota per volume directory
	EnforceBtrfs   = "btrfs"   // a btrfs subvolume with a qgroup limit per volume
)

// volumeMode is the mode of a volume's directory.
const volumeMode = fs.FileMode(0o755)

// Quotas holds the project ID allocators, one per filesystem (shared by
// the pools on it).
type Quotas struct {
	mu     sync.Mutex
	allocs map[uint64]*quota.Allocator // by st_dev
}

// Enforcement says how the pool enforces capacities ("" when it does not).
func (p *Pool) Enforcement() string {
	e, _ := p.enforce.Load().(string)
	return e
}

// Setup decides, once per pool, how it enforces capacities: project
// quotas where its filesystem enforces them, btrfs qgroups where quotas are
// enabled (quota: required enables them), else accounting only. A pool with
// `quota: required` and no enforcement is unhealthy. root is the pool's
// data directory; projects lists the project IDs the records hold, which a
// new allocator marks used.
func (q *Quotas) Setup(p *Pool, root *os.Root, log *logrus.Entry, projects func() []uint32) error {
	if !p.Kind.Directory() || p.Enforcement() != "" || p.Spec.Quota == pool.QuotaOff {
		return nil
	}
	var reason error
	err := withFS(root, ".", func(dir *os.File, qfs *quota.FS) error {
		reason = q.enforcement(p, dir, qfs, log, projects)
		return nil
	})
	if err != nil {
		return err
	}
	if reason != nil && p.Spec.Quota == pool.QuotaRequired {
		return fmt.Errorf("%w: pool %q: quota: required, but %v", ErrUnhealthy, p.Name, reason)
	}
	if reason != nil && !p.quotaLogged.Swap(true) {
		log.WithField("pool", p.Name).WithError(reason).Info("capacity is accounted, not enforced: usage is measured")
	}
	return nil
}

// enforcement sets the pool's enforcement from its filesystem, or says why
// it has none.
func (q *Quotas) enforcement(p *Pool, dir *os.File, qfs *quota.FS, log *logrus.Entry, projects func() []uint32) (reason error) {
	d := DecideQuota(p.Spec, dir, qfs)
	if d.EnableBtrfs {
		if err := quota.EnableQuota(dir); err != nil {
			return err
		}
	}
	switch d.Method {
	case EnforceProject:
		q.allocator(p, qfs.Dev(), projects)
		log.WithFields(logrus.Fields{"pool": p.Name, "commands": qfs.Commands()}).Info("capacity is enforced by project quota")
	case EnforceNone:
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
		return QuotaDecision{Method: EnforceProject}
	case quota.KindBtrfs:
		on, err := quota.QuotaEnabled(dir)
		switch {
		case err != nil:
			return QuotaDecision{Reason: err}
		case !on && spec.Quota == pool.QuotaRequired:
			return QuotaDecision{Method: EnforceBtrfs, EnableBtrfs: true}
		case !on:
			return QuotaDecision{Reason: fmt.Errorf("%w: btrfs quotas are not enabled on %s (quota: required enables them)", quota.ErrNotSupported, canonicalDir(spec.Path))}
		}
		return QuotaDecision{Method: EnforceBtrfs}
	}
	return QuotaDecision{Reason: fmt.Errorf("%w: %s is on %s", quota.ErrNotSupported, canonicalDir(spec.Path), qfs.Kind())}
}

// InspectQuota is DecideQuota on the filesystem of dir, or of its nearest
// ancestor that exists (a ROOT pool's root made at start); a pool with
// `quota: off` gets the zero decision. For `localdisk check`.
func InspectQuota(spec pool.Spec, dir string) QuotaDecision {
	if spec.Quota == pool.QuotaOff {
		return QuotaDecision{}
	}
	f, err := os.Open(existingParent(dir))
	if err != nil {
		return QuotaDecision{Reason: err}
	}
	defer f.Close()
	qfs, err := quota.NewFS(f)
	if err != nil {
		return QuotaDecision{Reason: err}
	}
	defer qfs.Close()
	return DecideQuota(spec, f, qfs)
}

// existingParent is dir or its nearest ancestor that exists.
func existingParent(dir string) string {
	for {
		if _, err := os.Lstat(dir); err == nil || dir == "/" {
			return dir
		}
		dir = filepath.Dir(dir)
	}
}

func canonicalDir(p string) string {
	if dir, err := filepath.EvalSymlinks(p); err == nil {
		return dir
	}
	return p
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
func (q *Quotas) allocator(p *Pool, dev uint64, projects func() []uint32) *quota.Allocator {
	q.mu.Lock()
	defer q.mu.Unlock()
	if a := q.allocs[dev]; a != nil {
		p.alloc.Store(a)
		return a
	}
	dir := filepath.Join(p.Dir, layout.DataDir)
	a, _ := quota.NewAllocator(quota.DefaultFirstID, quota.DefaultLastID, func(id uint32) (bool, error) {
		qfs, err := quota.Open(dir)
		if err != nil {
			return false, err
		}
		defer qfs.Close()
		return qfs.InUse(id)
	})
	for _, id := range projects() {
		a.MarkUsed(id)
	}
	if q.allocs == nil {
		q.allocs = map[uint64]*quota.Allocator{}
	}
	q.allocs[dev] = a
	p.alloc.Store(a)
	return a
}

// AllocProject reserves a project ID for a new volume of a project-quota
// pool (0 for other pools).
func (p *Pool) AllocProject() (uint32, error) {
	if p.Enforcement() != EnforceProject {
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

// ReleaseProject gives a project ID back once no record holds it.
func (p *Pool) ReleaseProject(id uint32) {
	if a, _ := p.alloc.Load().(*quota.Allocator); a != nil && id != 0 {
		a.Release(id)
	}
}

// MakeVolumeDir makes a volume's directory inside the pool's data
// directory root (a btrfs subvolume where the pool uses qgroups) and sets
// its limit; idempotent, for retries. It sets rec.Subvolume (rec is not
// indexed yet: its record follows).
func (p *Pool) MakeVolumeDir(root *os.Root, rec *state.Record) error {
	dir := path.Join(layout.VolumesDir, rec.ID)
	if p.Enforcement() == EnforceBtrfs {
		parent, err := root.Open(layout.VolumesDir)
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
	sub, err := p.ApplyLimit(root, rec)
	if sub != 0 {
		rec.Subvolume = sub
	}
	return err
}

// ApplyLimit (re)applies a volume's capacity as its quota: the project and
// its limit, or the subvolume's qgroup limit, returning the subvolume's ID
// (0 when the pool does not use qgroups). It changes no record.
// Idempotent: start-up and expansion call it again.
func (p *Pool) ApplyLimit(root *os.Root, rec *state.Record) (subvolume uint64, err error) {
	switch {
	case p.Enforcement() == EnforceProject && rec.ProjectID != 0:
		return 0, withFS(root, path.Join(layout.VolumesDir, rec.ID), func(f *os.File, qfs *quota.FS) error {
			if err := quota.SetProject(f, rec.ProjectID); err != nil {
				return err
			}
			return qfs.SetLimit(rec.ProjectID, quota.Limits{Bytes: uint64(rec.Capacity), Inodes: uint64(p.VolumeInodes)})
		})
	case p.Enforcement() == EnforceBtrfs:
		f, err := root.Open(path.Join(layout.VolumesDir, rec.ID))
		if err != nil {
			return 0, err
		}
		defer f.Close()
		// A volume made before its pool had quotas is a plain directory:
		// its "subvolume" would be the one holding the pool (the whole
		// filesystem's top level, say), which must never get its limit.
		if sub, err := quota.IsSubvolume(f); err != nil || !sub {
			return 0, err
		}
		id, err := quota.SubvolumeID(f)
		if err != nil {
			return 0, err
		}
		return id, quota.SetQgroupLimit(f, id, uint64(rec.Capacity))
	}
	return 0, nil
}

// RemoveVolumeDir removes a volume's directory in the trash: a subvolume
// is deleted as such; then its project's limit is cleared.
func (p *Pool) RemoveVolumeDir(root *os.Root, rec *state.Record, trash string) error {
	if rec.Subvolume != 0 {
		parent, err := root.Open(layout.TrashDir)
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
	return p.clearProject(root, rec.ProjectID)
}

// clearProject clears a released project's limit.
func (p *Pool) clearProject(root *os.Root, id uint32) error {
	if id == 0 || p.Enforcement() != EnforceProject {
		return nil
	}
	return withFS(root, ".", func(_ *os.File, qfs *quota.FS) error { return qfs.ClearLimit(id) })
}

// RemoveOrphan removes an empty volume directory that no record owns (a
// create that crashed before its record): the subvolume, or the directory
// and its project's limit. A directory that holds anything is kept.
func (p *Pool) RemoveOrphan(root *os.Root, id string) error {
	dir := path.Join(layout.VolumesDir, id)
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
	if p.Enforcement() == EnforceBtrfs {
		parent, err := root.Open(layout.VolumesDir)
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
	return p.clearProject(root, project)
}
