package check

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/localdisk-csi/localdisk/driver/mounter"
)

// KubeletDir is kubelet's default root directory, under which it makes the
// staging and target paths: the default place of the propagation probe.
const KubeletDir = "/var/lib/kubelet"

// ProbeDir is where the propagation probe binds: the target dir given, else
// kubelet's directory where there is one, else the state dir.
func ProbeDir(targetDir, stateDir string) string {
	if targetDir != "" {
		return targetDir
	}
	if fi, err := os.Stat(KubeletDir); err == nil && fi.IsDir() {
		return KubeletDir
	}
	return stateDir
}

// host is what the propagation check reads of the system, and its probe;
// unit tests fake it.
type host struct {
	readlink func(string) (string, error)
	exists   func(string) bool
	readFile func(string) ([]byte, error)
	// mounts reads this process's mount table.
	mounts func() (mounter.Table, error)
	// probe binds a temporary directory under dir and reports whether the
	// bind shows in the mount table at hostMountinfo.
	probe func(dir, hostMountinfo string) (bool, error)
}

var realHost = host{
	readlink: os.Readlink,
	exists:   func(p string) bool { _, err := os.Lstat(p); return err == nil },
	readFile: os.ReadFile,
	mounts:   mounter.ReadTable,
	probe:    probeBind,
}

// cgroupMarkers are what a container's cgroup path holds.
var cgroupMarkers = []string{"/docker", "/kubepods", "/containerd", "/libpod", "/lxc", "/crio-", "/cri-containerd", "/podman", "/machine.slice"}

// container says whether this process runs in a container and how it
// knows, and whether the host's mount namespace is reachable: a mount
// namespace other than PID 1's (a host PID namespace, or a private mount
// namespace of a service) makes PID 1's the one to compare with.
func (h host) container() (in, reachable bool, why string) {
	self, err1 := h.readlink("/proc/self/ns/mnt")
	one, err2 := h.readlink("/proc/1/ns/mnt")
	if err1 == nil && err2 == nil {
		if self != one {
			return true, true, "its mount namespace is not PID 1's"
		}
	} else if a, b := h.rootMountID("/proc/self/mountinfo"), h.rootMountID("/proc/1/mountinfo"); a != "" && b != "" && a != b {
		// PID 1's namespace link cannot be read (it takes ptrace rights
		// over PID 1), but its mount table can: mount IDs are unique
		// across namespaces, so another root mount is another namespace.
		return true, true, "its mount namespace is not PID 1's (another root mount)"
	}
	for _, f := range []string{"/.dockerenv", "/run/.containerenv"} {
		if h.exists(f) {
			return true, false, f + " exists"
		}
	}
	if b, err := h.readFile("/proc/self/cgroup"); err == nil {
		for line := range strings.Lines(string(b)) {
			for _, m := range cgroupMarkers {
				if strings.Contains(line, m) {
					return true, false, "its cgroup is " + strings.TrimSpace(line)
				}
			}
		}
	}
	return false, false, ""
}

// rootMountID is the mount ID of the root mount in the mount table at
// path, "" when it cannot be read.
func (h host) rootMountID(path string) string {
	b, err := h.readFile(path)
	if err != nil {
		return ""
	}
	for line := range strings.Lines(string(b)) {
		if f := strings.Fields(line); len(f) > 4 && f[4] == "/" {
			return f[0]
		}
	}
	return ""
}

// propagation reports whether the binds made under dir reach the host.
func propagation(h host, dir string) Finding {
	const subject = "propagation"
	in, reachable, why := h.container()
	if !in {
		return finding(OK, subject, "not in a container: the host's mount namespace")
	}
	dir = canonical(existingParent(dir)) // serve makes a missing state dir there
	if reachable && h.probe != nil {
		seen, err := h.probe(dir, "/proc/1/mountinfo")
		switch {
		case err != nil:
			return finding(Fail, subject, "in a container (%s): a bind under %s: %v", why, dir, err)
		case seen:
			return finding(OK, subject, "in a container (%s): a bind made under %s is visible in PID 1's mount namespace: mounts reach the host", why, dir)
		}
		return finding(Fail, subject, "in a container (%s): a bind made under %s is not visible in PID 1's mount namespace: volumes mounted here do not reach the host or the CO (a missing mountPropagation: Bidirectional, or a private mount namespace)", why, dir)
	}
	t, err := h.mounts()
	if err != nil {
		return finding(Warn, subject, "in a container (%s): %v", why, err)
	}
	e := t.Containing(dir)
	if e == nil {
		return finding(Warn, subject, "in a container (%s): no mount holds %s", why, dir)
	}
	unverified := "not verified against the host's mount table, which is not reachable from here (no host PID namespace)"
	if reachable {
		unverified = "not probed at start (`localdisk check` binds to verify it)"
	}
	shared, master := peerGroups(e.Optional)
	switch {
	case shared != "":
		return finding(Warn, subject, "in a container (%s): the mount holding %s (at %s) is shared (peer group %s): binds made there reach its peers; that the host is one is %s", why, dir, e.Mountpoint, shared, unverified)
	case master != "":
		return finding(Warn, subject, "in a container (%s): the mount holding %s (at %s) receives the host's mounts (master:%s) but is not shared: binds made there do not reach the host (a missing mountPropagation: Bidirectional?); %s", why, dir, e.Mountpoint, master, unverified)
	}
	return finding(Warn, subject, "in a container (%s): the mount holding %s (at %s) is private: binds made there do not reach the host (a missing mountPropagation: Bidirectional, or a private mount namespace); %s", why, dir, e.Mountpoint, unverified)
}

// peerGroups reads the optional fields of a mountinfo line: the peer group
// a shared mount is in, and the one a slave mount receives from.
func peerGroups(optional string) (shared, master string) {
	for _, f := range strings.Fields(optional) {
		if v, ok := strings.CutPrefix(f, "shared:"); ok {
			shared = v
		}
		if v, ok := strings.CutPrefix(f, "master:"); ok {
			master = v
		}
	}
	return shared, master
}

// probeBind binds a new temporary directory onto another under dir, the
// way volumes are bound (mounter.BindPath), looks for the bind in the
// mount table at hostMountinfo by what it shows (filesystem and root,
// which are the same in every namespace), then unmounts it and removes
// both directories. A bind that cannot be unmounted is detached, and the
// directories are then left alone.
func probeBind(dir, hostMountinfo string) (seen bool, err error) {
	tmp, err := os.MkdirTemp(dir, probePrefix)
	if err != nil {
		return false, err
	}
	src, dst := filepath.Join(tmp, "src"), filepath.Join(tmp, "dst")
	keep := false
	defer func() {
		if !keep {
			os.RemoveAll(tmp)
		}
	}()
	for _, d := range []string{src, dst} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return false, err
		}
	}
	t, err := mounter.ReadTable()
	if err != nil {
		return false, err
	}
	want, err := t.Locate(src)
	if err != nil {
		return false, err
	}
	if err := mounter.BindPath(src, dst, false); err != nil {
		return false, fmt.Errorf("cannot bind: %w", err)
	}
	seen, err = showsIn("/proc/self/mountinfo", want)
	if err == nil && !seen {
		err = errors.New("the probe's bind is missing from this process's own mount table")
	}
	if err == nil {
		seen, err = showsIn(hostMountinfo, want)
	}
	if uerr := mounter.UnmountAll(dst); uerr != nil {
		keep = true
		if derr := unix.Unmount(dst, unix.MNT_DETACH); derr != nil {
			return seen, fmt.Errorf("the probe's bind at %s stays mounted: %v, %v", dst, uerr, derr)
		}
		return seen, fmt.Errorf("the probe's bind at %s was detached: %v", dst, uerr)
	}
	return seen, err
}

// showsIn reports whether a mount of src is in the mount table at path.
func showsIn(path string, src mounter.Source) (bool, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	if err != nil {
		return false, fmt.Errorf("the mount table: %w", err)
	}
	defer f.Close()
	t, err := mountinfo.GetMountsFromReader(f, nil)
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", path, err)
	}
	for _, e := range t {
		if mounter.SourceOf(e) == src {
			return true, nil
		}
	}
	return false, nil
}
