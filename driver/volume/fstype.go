package volume

import (
	"os"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// FSType is the type of the filesystem a ROOT or PATH pool lives on, as the
// mount table names it (ext4, xfs, btrfs, tmpfs, ...): the only fs_type its
// directory volumes are confirmed with. "" until the pool has been found
// healthy, or when the mount table did not tell.
func (p *Pool) FSType() string {
	t, _ := p.fsType.Load().(string)
	return t
}

// learnFSType records the pool's filesystem type the first time it is
// found healthy (a disk swapped for another fails the pool's marker check
// first).
func (p *Pool) learnFSType(dir *os.File) {
	if p.FSType() != "" {
		return
	}
	if t := fsTypeOf(dir, p.dir); t != "" {
		p.fsType.Store(t)
	}
}

// fsTypeOf names the filesystem of the open directory dir, whose canonical
// path is path: the type of the mount of dir's device whose mount point is
// the longest prefix of path.
func fsTypeOf(dir *os.File, path string) string {
	var st unix.Stat_t
	if err := unix.Fstat(int(dir.Fd()), &st); err != nil {
		return ""
	}
	major, minor := int(unix.Major(st.Dev)), int(unix.Minor(st.Dev))
	mounts, err := mountinfo.GetMounts(func(m *mountinfo.Info) (skip, stop bool) {
		return m.Major != major || m.Minor != minor, false
	})
	if err != nil {
		return ""
	}
	var best *mountinfo.Info
	for _, m := range mounts {
		in := path == m.Mountpoint || m.Mountpoint == "/" || strings.HasPrefix(path, m.Mountpoint+"/")
		if in && (best == nil || len(m.Mountpoint) > len(best.Mountpoint)) {
			best = m
		}
	}
	if best == nil {
		return ""
	}
	return best.FSType
}
