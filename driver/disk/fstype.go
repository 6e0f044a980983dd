package disk

import (
	"os"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"
)

// FSTypeOf names the filesystem of the open directory dir, whose canonical
// path is path: the type of the mount of dir's device whose mount point is
// the longest prefix of path ("" when the mount table does not tell).
func FSTypeOf(dir *os.File, path string) string {
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
