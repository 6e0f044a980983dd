package copytree

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// noReflink reports whether err, from FICLONE, says that the filesystem
// cannot clone these files.
func noReflink(err error) bool {
	return errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EXDEV) ||
		errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOTTY)
}

// cloneData shares the data of sfd with dfd (FICLONE).
func cloneData(sfd, dfd int) error {
	for {
		err := unix.IoctlFileClone(dfd, sfd)
		if err == unix.EINTR {
			continue
		}
		if err != nil && noReflink(err) {
			return fmt.Errorf("%w: FICLONE: %w", ErrNoReflink, err)
		}
		if err != nil {
			return fmt.Errorf("FICLONE: %w", err)
		}
		return nil
	}
}

// copyData copies the first size bytes of sfd to dfd, data segment by data
// segment (SEEK_DATA/SEEK_HOLE), so that holes stay holes, and sizes dfd to
// size. A filesystem without SEEK_DATA has one data segment, the file.
func copyData(sfd, dfd int, size int64, buf *[]byte) error {
	for off := int64(0); off < size; {
		data, err := unix.Seek(sfd, off, unix.SEEK_DATA)
		if errors.Is(err, unix.ENXIO) {
			break // only a hole from off on (or the file shrank)
		}
		hole := size
		if errors.Is(err, unix.EINVAL) || errors.Is(err, unix.EOPNOTSUPP) {
			data = off
		} else if err != nil {
			return fmt.Errorf("SEEK_DATA: %w", err)
		} else if hole, err = unix.Seek(sfd, data, unix.SEEK_HOLE); err != nil {
			return fmt.Errorf("SEEK_HOLE: %w", err)
		}
		if data >= size {
			break
		}
		hole = min(hole, size)
		n, err := copyRange(sfd, dfd, data, hole-data, buf)
		if err != nil {
			return err
		}
		if n < hole-data {
			break // the file shrank while it was copied
		}
		off = hole
	}
	if err := unix.Ftruncate(dfd, size); err != nil {
		return fmt.Errorf("ftruncate: %w", err)
	}
	return nil
}

// copyRange copies n bytes at off from sfd to dfd at the same offset, with
// copy_file_range(2) where the kernel and filesystems can, else read and
// write. It returns fewer bytes only at the end of sfd.
func copyRange(sfd, dfd int, off, n int64, buf *[]byte) (int64, error) {
	done := int64(0)
	for done < n {
		soff, doff := off+done, off+done
		c, err := unix.CopyFileRange(sfd, &soff, dfd, &doff, int(min(n-done, 1<<30)), 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			if errors.Is(err, unix.EXDEV) || errors.Is(err, unix.EOPNOTSUPP) ||
				errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EINVAL) ||
				errors.Is(err, unix.EPERM) {
				m, err := readWrite(sfd, dfd, off+done, n-done, buf)
				return done + m, err
			}
			return done, fmt.Errorf("copy_file_range: %w", err)
		}
		if c == 0 {
			return done, nil
		}
		done += int64(c)
	}
	return done, nil
}

// readWrite is copyRange with pread(2) and pwrite(2).
func readWrite(sfd, dfd int, off, n int64, buf *[]byte) (int64, error) {
	if *buf == nil {
		*buf = make([]byte, 1<<20)
	}
	b := *buf
	done := int64(0)
	for done < n {
		r, err := unix.Pread(sfd, b[:min(int64(len(b)), n-done)], off+done)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return done, fmt.Errorf("read: %w", err)
		}
		if r == 0 {
			return done, nil
		}
		for w := 0; w < r; {
			k, err := unix.Pwrite(dfd, b[w:r], off+done+int64(w))
			if err == unix.EINTR {
				continue
			}
			if err != nil {
				return done, fmt.Errorf("write: %w", err)
			}
			w += k
		}
		done += int64(r)
	}
	return done, nil
}

// CanReflink reports whether files in the directory dir can be cloned
// with FICLONE: it creates a temporary file of one block in dir, clones it
// into a second one and removes both. A filesystem that cannot clone gives
// false and no error; an error is a failure of the probe itself (ENOSPC
// wraps ErrNoSpace).
func CanReflink(dir *os.File) (bool, error) {
	dfd, err := openIn(int(dir.Fd()), ".", unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return false, fmt.Errorf("copytree: opening the directory: %w", err)
	}
	defer unix.Close(dfd)
	var made []string
	defer func() {
		for _, name := range made {
			_ = unix.Unlinkat(dfd, name, 0)
		}
	}()
	create := func() (int, error) {
		// O_TMPFILE leaves nothing behind even if the process dies.
		fd, err := unix.Openat(dfd, ".", unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
		if err == nil || !(errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EISDIR)) {
			return fd, err
		}
		var r [8]byte
		_, _ = rand.Read(r[:])
		name := ".copytree-probe-" + hex.EncodeToString(r[:])
		fd, err = unix.Openat(dfd, name,
			unix.O_CREAT|unix.O_EXCL|unix.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
		if err == nil {
			made = append(made, name)
		}
		return fd, err
	}
	src, err := create()
	if err != nil {
		return false, wrapErr("creating a probe file", "", err)
	}
	defer unix.Close(src)
	block := make([]byte, 4096)
	for i := range block {
		block[i] = byte(i)
	}
	if _, err := unix.Pwrite(src, block, 0); err != nil {
		return false, wrapErr("writing a probe file", "", err)
	}
	dst, err := create()
	if err != nil {
		return false, wrapErr("creating a probe file", "", err)
	}
	defer unix.Close(dst)
	err = cloneData(src, dst)
	if errors.Is(err, ErrNoReflink) {
		return false, nil
	}
	if err != nil {
		return false, wrapErr("probing", "", err)
	}
	return true, nil
}
