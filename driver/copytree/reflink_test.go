package copytree

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"github.com/localdisk-csi/localdisk/test/testutil"
	"golang.org/x/sys/unix"
)

// TestReflinkXFS copies a tree with Reflink on XFS (reflink=1, the mkfs
// default): the trees compare equal, every extent of the 64 MiB file's
// copy is shared with the source (FIEMAP_EXTENT_SHARED), and the free
// space barely moves.
func TestReflinkXFS(t *testing.T) {
	disk := testutil.LoopDisk(t, testutil.ShortTempDir(t), 512, "xfs")
	ok, err := CanReflink(openDir(t, disk))
	if err != nil || !ok {
		t.Fatalf("CanReflink on XFS with reflink=1: %v, %v; want true", ok, err)
	}
	src, dst := filepath.Join(disk, "src"), filepath.Join(disk, "dst")
	must(t, os.Mkdir(src, 0o755))
	writeFile(t, filepath.Join(src, "big64"), 64<<20, 3)
	buildRich(t, src) // after big64: its times too
	unix.Sync()       // the source's delayed allocations out of the count
	free := func() int64 {
		var s unix.Statfs_t
		must(t, unix.Statfs(disk, &s))
		return int64(s.Bfree) * s.Bsize
	}
	before := free()
	st, err := copyPaths(t, context.Background(), src, dst, Reflink)
	if err != nil {
		t.Fatalf("Copy: %v", err)
	}
	used := before - free()
	if used > 4<<20 {
		t.Errorf("the reflink copy used %d KiB of free space, want under 4 MiB", used>>10)
	}
	want := richCounts
	want.Files++
	checkCounts(t, st, want)
	compareTrees(t, src, dst, nil)
	for _, name := range []string{"big64", "big"} {
		n, shared := extents(t, filepath.Join(dst, name))
		if n == 0 || shared != n {
			t.Errorf("%s: %d of its %d extents shared, want all", name, shared, n)
		}
	}
	t.Logf("reflink copy of %d bytes used %d KiB", st.Bytes, used>>10)
}

// extents counts the extents of p and those flagged FIEMAP_EXTENT_SHARED.
func extents(t *testing.T, p string) (n, shared int) {
	t.Helper()
	f, err := os.Open(p)
	must(t, err)
	defer f.Close()
	const (
		fsIocFiemap  = 0xC020660B
		flagSync     = 0x1
		extentLast   = 0x1
		extentShared = 0x2000
		headerSize   = 32
		extentSize   = 56
		batch        = 256
	)
	buf := make([]uint64, (headerSize+batch*extentSize)/8)
	b := unsafe.Slice((*byte)(unsafe.Pointer(&buf[0])), len(buf)*8)
	for start := uint64(0); ; {
		clear(b)
		binary.NativeEndian.PutUint64(b[0:], start)
		binary.NativeEndian.PutUint64(b[8:], ^uint64(0)-start)
		binary.NativeEndian.PutUint32(b[16:], flagSync)
		binary.NativeEndian.PutUint32(b[24:], batch)
		_, _, e := unix.Syscall(unix.SYS_IOCTL, f.Fd(), fsIocFiemap, uintptr(unsafe.Pointer(&buf[0])))
		if e != 0 {
			t.Fatalf("FIEMAP %s: %v", p, e)
		}
		mapped := int(binary.NativeEndian.Uint32(b[20:]))
		if mapped == 0 {
			return n, shared
		}
		for i := range mapped {
			ext := b[headerSize+i*extentSize:]
			flags := binary.NativeEndian.Uint32(ext[40:])
			n++
			if flags&extentShared != 0 {
				shared++
			}
			start = binary.NativeEndian.Uint64(ext[0:]) + binary.NativeEndian.Uint64(ext[16:])
			if flags&extentLast != 0 {
				return n, shared
			}
		}
	}
}

// TestReflinkExt4: ext4 cannot clone, so CanReflink says false and a
// Reflink copy fails with ErrNoReflink rather than copying the data.
func TestReflinkExt4(t *testing.T) {
	disk := testutil.LoopDisk(t, testutil.ShortTempDir(t), 64, "ext4")
	ok, err := CanReflink(openDir(t, disk))
	if err != nil || ok {
		t.Errorf("CanReflink on ext4: %v, %v; want false, nil", ok, err)
	}
	if names := readDirNames(t, disk); len(names) != 1 || names[0] != "lost+found" {
		t.Errorf("CanReflink left %v behind", names)
	}
	src := filepath.Join(disk, "src")
	must(t, os.Mkdir(src, 0o755))
	must(t, os.WriteFile(filepath.Join(src, "f"), []byte("data"), 0o644))
	_, err = copyPaths(t, context.Background(), src, filepath.Join(disk, "dst"), Reflink)
	if !errors.Is(err, ErrNoReflink) {
		t.Fatalf("Reflink copy on ext4: %v, want ErrNoReflink", err)
	}
	if fi, err := os.Stat(filepath.Join(disk, "dst", "f")); err == nil && fi.Size() != 0 {
		t.Errorf("the failed reflink copied %d bytes", fi.Size())
	}
}

// TestNoSpace: a file larger than the target filesystem (64 MiB ext4)
// fails the copy with ErrNoSpace.
func TestNoSpace(t *testing.T) {
	dir := testutil.ShortTempDir(t)
	disk := testutil.LoopDisk(t, dir, 64, "ext4")
	src := filepath.Join(dir, "src")
	must(t, os.Mkdir(src, 0o755))
	writeFile(t, filepath.Join(src, "huge"), 96<<20, 4)
	_, err := copyPaths(t, context.Background(), src, filepath.Join(disk, "dst"), Full)
	if !errors.Is(err, ErrNoSpace) || !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("copying 96 MiB into 64 MiB: %v, want ErrNoSpace wrapping ENOSPC", err)
	}
	t.Logf("error: %v", err)
}

// TestWrapNoSpace: EDQUOT, from a quota, is ErrNoSpace too.
func TestWrapNoSpace(t *testing.T) {
	for _, errno := range []unix.Errno{unix.ENOSPC, unix.EDQUOT} {
		if err := wrapErr("copying", "a/b", errno); !errors.Is(err, ErrNoSpace) || !errors.Is(err, errno) {
			t.Errorf("wrapErr(%v) = %v, want ErrNoSpace and %v", errno, err, errno)
		}
	}
	if err := wrapErr("copying", "a", unix.EIO); errors.Is(err, ErrNoSpace) {
		t.Errorf("wrapErr(EIO) = %v wraps ErrNoSpace", err)
	}
}
