package quota

// The tests of this file need a filesystem mounted with project quota, which
// the hosts running the suite cannot mount: TestUML (uml_test.go) runs them
// inside user-mode Linux, where LOCALDISK_QUOTA_IN_UML names the filesystem
// (xfs or ext4) mounted with -o prjquota at $UML_DISK_QUOTA, and the same
// filesystem mounted without it at $UML_DISK_PLAIN. Elsewhere they skip.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// inUMLEnv names the filesystem the UML run tests; unset on the host.
const inUMLEnv = "LOCALDISK_QUOTA_IN_UML"

const (
	kiB = 1 << 10
	miB = 1 << 20
)

// umlFS opens the quota-enabled filesystem of the UML run, or skips.
func umlFS(t *testing.T) *FS {
	t.Helper()
	if os.Getenv(inUMLEnv) == "" {
		t.Skip("runs inside user-mode Linux, started by TestUML")
	}
	fs, err := Open(os.Getenv("UML_DISK_QUOTA"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fs.Close() })
	return fs
}

// projectDir makes a directory named after the test in fs, gives it
// project id and limits l, and undoes both at the end of the test.
func projectDir(t *testing.T, fs *FS, name string, id uint32, l Limits) string {
	t.Helper()
	dir := filepath.Join(fs.Path(), strings.ReplaceAll(t.Name(), "/", "_")+"-"+name)
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("removing %s: %v", dir, err)
		}
		if err := fs.ClearLimit(id); err != nil {
			t.Errorf("clearing project %d: %v", id, err)
		}
	})
	d, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := SetProject(d, id); err != nil {
		t.Fatalf("SetProject(%s, %d): %v", dir, id, err)
	}
	if got, inherit, err := Project(d); err != nil || got != id || !inherit {
		t.Fatalf("Project(%s) = %d, %v, %v; want %d, true, nil", dir, got, inherit, err, id)
	}
	if err := fs.SetLimit(id, l); err != nil {
		t.Fatalf("SetLimit(%d, %+v): %v", id, l, err)
	}
	return dir
}

// unprivileged runs fn on an OS thread without CAP_SYS_RESOURCE in its
// effective set, like a container's process: with it, the VFS quota code
// (ext4) lets a process exceed hard limits. The thread is thrown away after.
func unprivileged(fn func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			done <- fmt.Errorf("capget: %w", err)
			return
		}
		data[0].Effective &^= 1 << unix.CAP_SYS_RESOURCE
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			done <- fmt.Errorf("capset: %w", err)
			return
		}
		done <- fn()
	}()
	return <-done
}

// write appends up to n bytes to the file path in 64 KiB writes and
// fsyncs it, without CAP_SYS_RESOURCE; it returns how many bytes were
// written and the first error.
func write(path string, n int64) (done int64, err error) {
	err = unprivileged(func() error {
		var err error
		done, err = writeFile(path, n)
		return err
	})
	return done, err
}

func writeFile(path string, n int64) (int64, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	buf := make([]byte, 64*kiB)
	for i := range buf {
		buf[i] = byte(i) | 1 // not zeros: no filesystem may skip them
	}
	var done int64
	for done < n && err == nil {
		var k int
		k, err = f.Write(buf[:min(int64(len(buf)), n-done)])
		done += int64(k)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return done, err
}

// errExceeded is the error a write past a project's limit gets: EDQUOT,
// except on XFS, which reports a project quota as a full disk (ENOSPC).
func errExceeded(fs *FS) error {
	if fs.Kind() == KindXFS {
		return unix.ENOSPC
	}
	return unix.EDQUOT
}

// fill writes to path until the quota stops it, and fails the test unless
// it is stopped by the quota (errExceeded) within limit bytes.
func fill(t *testing.T, fs *FS, path string, limit int64) int64 {
	t.Helper()
	n, err := write(path, 2*limit)
	if want := errExceeded(fs); !errors.Is(err, want) {
		t.Fatalf("writing %d bytes to %s under a %d-byte limit: wrote %d, error %v; want %v",
			2*limit, path, limit, n, err, want)
	}
	if n > limit || n < limit/2 {
		t.Fatalf("wrote %d bytes under a %d-byte limit before EDQUOT", n, limit)
	}
	return n
}

func TestInUMLDetect(t *testing.T) {
	fs := umlFS(t)
	want := os.Getenv(inUMLEnv)
	if fs.Kind().String() != want {
		t.Errorf("Kind() = %s, want %s", fs.Kind(), want)
	}
	st, err := fs.State()
	if err != nil || !st.Accounting || !st.Enforced {
		t.Errorf("State() = %+v, %v; want accounting and enforcement", st, err)
	}
	if err := fs.Supported(); err != nil {
		t.Errorf("Supported() = %v, want nil", err)
	}
	t.Logf("%s with prjquota: %+v", fs.Kind(), st)

	plain, err := Open(os.Getenv("UML_DISK_PLAIN"))
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	st, err = plain.State()
	if err != nil || st.Enforced {
		t.Errorf("State() without prjquota = %+v, %v; want not enforced", st, err)
	}
	err = plain.Supported()
	if !errors.Is(err, ErrNotSupported) {
		t.Errorf("Supported() without prjquota = %v, want ErrNotSupported", err)
	}
	t.Logf("%s without prjquota: %+v; Supported: %v", plain.Kind(), st, err)
}

func TestInUMLWritePastLimitFails(t *testing.T) {
	fs := umlFS(t)
	const id, limit = 2_000_001, 4 * miB
	dir := projectDir(t, fs, "vol", id, Limits{Bytes: limit})
	n, err := write(filepath.Join(dir, "data"), 2*limit)
	t.Logf("%s: project %d, limit %d bytes: wrote %d of %d bytes, then: %v",
		fs.Kind(), id, limit, n, 2*limit, err)
	if want := errExceeded(fs); !errors.Is(err, want) || n > limit {
		t.Fatalf("want %v within %d bytes", want, limit)
	}
	if fs.Kind() != KindXFS && !IsExceeded(err) {
		t.Errorf("IsExceeded(%v) = false", err)
	}
	u, err := fs.Usage(id)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("usage: %d bytes, %d inodes, limits %+v", u.Bytes, u.Inodes, u.Limits)
	if u.Bytes > limit || u.Limits.Bytes != limit {
		t.Errorf("usage %+v, want at most %d bytes and that limit", u, limit)
	}
}

func TestInUMLTwoProjectsDoNotStarveEachOther(t *testing.T) {
	fs := umlFS(t)
	const a, b, limit = 2_000_011, 2_000_012, 4 * miB
	dirA := projectDir(t, fs, "a", a, Limits{Bytes: limit})
	dirB := projectDir(t, fs, "b", b, Limits{Bytes: limit})
	nA := fill(t, fs, filepath.Join(dirA, "data"), limit)
	if n, err := write(filepath.Join(dirB, "data"), 3*miB); err != nil {
		t.Fatalf("project %d full: writing 3 MiB to project %d: wrote %d, %v", a, b, n, err)
	}
	fill(t, fs, filepath.Join(dirB, "more"), limit-3*miB)
	// A third directory, in no project, still has the rest of the disk.
	free := filepath.Join(fs.Path(), "noproject-"+t.Name())
	t.Cleanup(func() { os.Remove(free) })
	if n, err := write(free, 16*miB); err != nil {
		t.Fatalf("both projects full: writing outside them: wrote %d, %v", n, err)
	}
	uA, errA := fs.Usage(a)
	uB, errB := fs.Usage(b)
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	t.Logf("project %d: %+v (wrote %d); project %d: %+v", a, uA, nA, b, uB)
	if uA.Bytes < uint64(nA) || uA.Bytes > limit || uA.Inodes != 2 || uB.Bytes > limit || uB.Inodes != 3 {
		t.Errorf("usage A %+v, B %+v: want each within %d bytes, with 2 and 3 inodes", uA, uB, limit)
	}
}

func TestInUMLUsageCountsTheProjectOnly(t *testing.T) {
	fs := umlFS(t)
	const id = 2_000_021
	dir := projectDir(t, fs, "vol", id, Limits{Bytes: 64 * miB, Inodes: 100})
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := write(filepath.Join(dir, "sub", fmt.Sprint("f", i)), 100*kiB); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "empty"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// Outside the project: not counted.
	other := filepath.Join(fs.Path(), "outside-"+t.Name())
	t.Cleanup(func() { os.Remove(other) })
	if _, err := write(other, miB); err != nil {
		t.Fatal(err)
	}
	u, err := fs.Usage(id)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("usage: %+v", u)
	// Inodes: the volume, sub, three files, empty. Bytes: 300 KiB of data
	// plus what the directories take (none on XFS, a block each on ext4).
	if u.Inodes != 6 || u.Bytes < 300*kiB || u.Bytes > 400*kiB {
		t.Errorf("usage %+v, want 6 inodes and 300-400 KiB", u)
	}
	if u.Limits != (Limits{Bytes: 64 * miB, Inodes: 100}) {
		t.Errorf("limits %+v, want 64 MiB and 100 inodes", u.Limits)
	}
}

func TestInUMLInodeLimit(t *testing.T) {
	fs := umlFS(t)
	const id = 2_000_031
	dir := projectDir(t, fs, "vol", id, Limits{Inodes: 10})
	var made int
	err := unprivileged(func() error {
		for ; made < 20; made++ {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprint("f", made)), nil, 0o644); err != nil {
				return err
			}
		}
		return nil
	})
	t.Logf("made %d files under a 10-inode limit (the directory is one): %v", made, err)
	if want := errExceeded(fs); made != 9 || !errors.Is(err, want) {
		t.Fatalf("made %d files, then %v; want 9 and %v", made, err, want)
	}
}

func TestInUMLRaiseLetsTheWriteSucceed(t *testing.T) {
	fs := umlFS(t)
	const id = 2_000_041
	dir := projectDir(t, fs, "vol", id, Limits{Bytes: 2 * miB})
	n := fill(t, fs, filepath.Join(dir, "data"), 2*miB)
	if err := fs.SetLimit(id, Limits{Bytes: 8 * miB}); err != nil {
		t.Fatal(err)
	}
	if m, err := write(filepath.Join(dir, "data"), 4*miB); err != nil {
		t.Fatalf("after raising to 8 MiB, with %d bytes used: wrote %d of 4 MiB: %v", n, m, err)
	}
	u, err := fs.Usage(id)
	if err != nil || u.Limits.Bytes != 8*miB || u.Bytes < uint64(n)+4*miB {
		t.Errorf("usage %+v, %v; want a limit of 8 MiB and at least %d bytes", u, err, uint64(n)+4*miB)
	}
}

func TestInUMLClearReleasesTheProject(t *testing.T) {
	fs := umlFS(t)
	const id = 2_000_051
	dir := projectDir(t, fs, "vol", id, Limits{Bytes: 2 * miB})
	fill(t, fs, filepath.Join(dir, "data"), 2*miB)
	if err := fs.ClearLimit(id); err != nil {
		t.Fatal(err)
	}
	if n, err := write(filepath.Join(dir, "data"), 6*miB); err != nil {
		t.Fatalf("after clearing the limit: wrote %d of 6 MiB: %v", n, err)
	}
	if u, err := fs.Usage(id); err != nil || u.Limits != (Limits{}) {
		t.Fatalf("usage after ClearLimit: %+v, %v; want no limits", u, err)
	}
	if inUse, err := fs.InUse(id); err != nil || !inUse {
		t.Fatalf("InUse(%d) with data = %v, %v; want true", id, inUse, err)
	}
	// Delete the volume's data: the project then holds nothing.
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	syncFS(t, fs)
	u, err := fs.Usage(id)
	inUse, err2 := fs.InUse(id)
	t.Logf("after removing the data: usage %+v, in use %v", u, inUse)
	if err != nil || err2 != nil || !u.Empty() || inUse {
		t.Fatalf("usage %+v (%v), in use %v (%v); want empty and free", u, err, inUse, err2)
	}
	a, err := NewAllocator(id, id, fs.InUse)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := a.Allocate(); err != nil || got != id {
		t.Errorf("Allocate() = %d, %v; want the released %d", got, err, id)
	}
}

// syncFS commits the filesystem, so that space freed by removed files is
// returned to their projects before usage is read. XFS frees the blocks of
// removed files in the background (deferred inode inactivation) and syncfs
// does not wait for that, so XFS is frozen and thawed, which does.
func syncFS(t *testing.T, fs *FS) {
	t.Helper()
	err := withFd(fs.dir, func(fd int) error {
		if fs.Kind() != KindXFS {
			return unix.Syncfs(fd)
		}
		var arg int32
		fiFreeze := ioc(iocRead|iocWrite, 'X', 119, unsafe.Sizeof(arg)) // FIFREEZE
		fiThaw := ioc(iocRead|iocWrite, 'X', 120, unsafe.Sizeof(arg))   // FITHAW
		if err := ioctl(fd, fiFreeze, unsafe.Pointer(&arg)); err != nil {
			return fmt.Errorf("FIFREEZE: %w", err)
		}
		if err := ioctl(fd, fiThaw, unsafe.Pointer(&arg)); err != nil {
			return fmt.Errorf("FITHAW: %w", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
