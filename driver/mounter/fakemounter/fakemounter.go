// Package fakemounter is a mounter.Interface for tests that run without
// root: an in-memory mount table that binds and unmounts change, and that
// records every bind, unmount, format and BLKROSET asked of it. Paths are
// real (a bind needs its target to exist, as the kernel does; what a bound
// directory handle shows is read from /proc/self/fd), mounts are not.
package fakemounter

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"

	"github.com/moby/sys/mountinfo"
	"golang.org/x/sys/unix"

	"github.com/localdisk-csi/localdisk/driver/mounter"
)

// RootSource is what the table's one mount at start, at /, shows.
var RootSource = mounter.Source{Major: 8, Minor: 1, Root: "/"}

// The operations that Fail can make fail.
const (
	OpReadTable      = "ReadTable"
	OpBind           = "Bind" // BindDir and BindPath
	OpUnmount        = "Unmount"
	OpFormatAndMount = "FormatAndMount"
	OpSetReadOnly    = "SetDeviceReadOnly"
)

// Bind is one mount made through the fake: a bind, or a device's
// filesystem mounted by FormatAndMount.
type Bind struct {
	Source   mounter.Source
	Target   string
	ReadOnly bool
}

// Mounter is the fake. Its zero value is not usable: call New.
type Mounter struct {
	mu       sync.Mutex
	table    mounter.Table
	nextID   int
	binds    []Bind
	unmounts []string
	readOnly map[string]bool
	fail     map[string]error
	unsure   bool
}

var _ mounter.Interface = (*Mounter)(nil)

// New is a fake whose table holds one mount: RootSource at /.
func New() *Mounter {
	m := &Mounter{readOnly: map[string]bool{}, fail: map[string]error{}}
	m.add(RootSource, "/", false)
	return m
}

// Unsure makes the fast paths (NotMounted, MountOf, SameFile) answer
// false, as on a kernel without statx(2): the callers read the table.
func (m *Mounter) Unsure(unsure bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.unsure = unsure
}

// Fail makes every later call of operation op (one of the Op constants)
// fail with err; a nil err makes it succeed again.
func (m *Mounter) Fail(op string, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fail[op] = err
}

// Mount adds a mount of src at target, as something other than the code
// under test would make it: it is not recorded as a bind.
func (m *Mounter) Mount(src mounter.Source, target string, ro bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.add(src, target, ro)
}

// Binds lists the mounts made through the fake, in order.
func (m *Mounter) Binds() []Bind {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.binds)
}

// Unmounts lists the mount points of the mounts removed, in order (a path
// once per mount removed there).
func (m *Mounter) Unmounts() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.unmounts)
}

// DeviceReadOnly reports the read-only flag last set on dev, and whether
// one was set at all.
func (m *Mounter) DeviceReadOnly(dev string) (ro, set bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ro, set = m.readOnly[dev]
	return ro, set
}

// ReadTable returns a copy of the table.
func (m *Mounter) ReadTable() (mounter.Table, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.fail[OpReadTable]; err != nil {
		return nil, err
	}
	out := make(mounter.Table, len(m.table))
	for i, e := range m.table {
		c := *e
		out[i] = &c
	}
	return out, nil
}

// BindDir binds what the directory handle shows (its path, read from
// /proc/self/fd, located in the table) at target.
func (m *Mounter) BindDir(dir *os.File, target string, ro bool) error {
	p, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(dir.Fd())))
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.fail[OpBind]; err != nil {
		return err
	}
	src, err := m.table.Locate(p)
	if err != nil {
		return err
	}
	return m.bind(src, target, ro)
}

// BindPath binds what src shows at target: a clone of the topmost mount at
// src, or the directory or file src is.
func (m *Mounter) BindPath(src, target string, ro bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.fail[OpBind]; err != nil {
		return err
	}
	if err := noSymlink(src); err != nil {
		return err
	}
	s, err := m.view(src)
	if err != nil {
		return err
	}
	return m.bind(s, target, ro)
}

// UnmountAll removes every mount at path, topmost first.
func (m *Mounter) UnmountAll(path string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.fail[OpUnmount]; err != nil {
		return err
	}
	for i := len(m.table) - 1; i >= 0; i-- {
		if m.table[i].Mountpoint == path {
			m.table = slices.Delete(m.table, i, i+1)
			m.unmounts = append(m.unmounts, path)
		}
	}
	return nil
}

// FormatAndMount mounts the root of the block device dev's filesystem at
// target; nothing is formatted.
func (m *Mounter) FormatAndMount(dev, target, _ string, _ []string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.fail[OpFormatAndMount]; err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Stat(dev, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFBLK {
		return fmt.Errorf("%s is not a block device", dev)
	}
	return m.bind(mounter.Source{Major: int(unix.Major(st.Rdev)), Minor: int(unix.Minor(st.Rdev)), Root: "/"}, target, false)
}

// SetDeviceReadOnly records the flag.
func (m *Mounter) SetDeviceReadOnly(dev string, ro bool) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.fail[OpSetReadOnly]; err != nil {
		return err
	}
	m.readOnly[dev] = ro
	return nil
}

// NotMounted answers from the table (false when Unsure).
func (m *Mounter) NotMounted(path string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return !m.unsure && m.table.At(path) == nil
}

// MountOf answers from the table (false when Unsure).
func (m *Mounter) MountOf(path, dir string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.table.At(path)
	if m.unsure || e == nil {
		return false
	}
	d, err := m.table.Locate(dir)
	return err == nil && mounter.SourceOf(e) == d
}

// SameFile compares what the two paths show in the table; both must exist
// (false when Unsure).
func (m *Mounter) SameFile(a, b string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.unsure {
		return false
	}
	if _, err := os.Stat(a); err != nil {
		return false
	}
	if _, err := os.Stat(b); err != nil {
		return false
	}
	va, erra := m.view(a)
	vb, errb := m.view(b)
	return erra == nil && errb == nil && va == vb
}

// view is what path shows: the topmost mount there, or its place in the
// mount that contains it.
func (m *Mounter) view(path string) (mounter.Source, error) {
	if e := m.table.At(path); e != nil {
		return mounter.SourceOf(e), nil
	}
	if _, err := os.Lstat(path); err != nil {
		return mounter.Source{}, err
	}
	return m.table.Locate(path)
}

// bind mounts src at target, which must exist and not be a symlink.
func (m *Mounter) bind(src mounter.Source, target string, ro bool) error {
	if err := noSymlink(target); err != nil {
		return err
	}
	m.add(src, target, ro)
	m.binds = append(m.binds, Bind{Source: src, Target: target, ReadOnly: ro})
	return nil
}

func (m *Mounter) add(src mounter.Source, target string, ro bool) {
	m.nextID++
	opts := "rw"
	if ro {
		opts = "ro"
	}
	m.table = append(m.table, &mountinfo.Info{ID: m.nextID, Major: src.Major, Minor: src.Minor, Root: src.Root,
		Mountpoint: target, Options: opts, FSType: "fake", Source: "fake"})
}

// noSymlink fails as the kernel does when a path is missing or a symlink
// (the real binds never follow one).
func noSymlink(p string) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	if fi.Mode().Type() == os.ModeSymlink {
		return fmt.Errorf("%s is a symlink: %w", p, unix.ELOOP)
	}
	return nil
}
