package load

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

// Tree is a data set of Bytes bytes in Files regular files, 100 to a
// directory (d0000/f000000). Every file is a whole number of pages (4 KiB,
// so it can be written with O_DIRECT) and the sizes differ by at most one
// page; Bytes must be a multiple of 4 KiB and at least a page per file.
// Each file's content is pseudo-random (ChaCha8 keyed by Seed and the
// file's index), so it neither compresses nor deduplicates, and is
// regenerated to check a copy.
type Tree struct {
	Bytes int64
	Files int
	Seed  uint64
}

const (
	page         = 4096
	filesPerDir  = 100
	writeWorkers = 4
	chunk        = 1 << 20
)

// Check says whether the tree can be laid out.
func (t Tree) Check() error {
	if t.Files < 1 || t.Bytes%page != 0 || t.Bytes/page < int64(t.Files) {
		return fmt.Errorf("%d bytes in %d files: want a multiple of 4 KiB and at least 4 KiB a file", t.Bytes, t.Files)
	}
	return nil
}

// Path is file i's path relative to the tree's root.
func (t Tree) Path(i int) string {
	return filepath.Join(fmt.Sprintf("d%04d", i/filesPerDir), fmt.Sprintf("f%06d", i))
}

// Size is file i's size.
func (t Tree) Size(i int) int64 {
	pages := t.Bytes / page
	n := pages / int64(t.Files)
	if int64(i) < pages%int64(t.Files) {
		n++
	}
	return n * page
}

func (t Tree) content(i int) *rand.ChaCha8 {
	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], t.Seed)
	binary.LittleEndian.PutUint64(seed[8:], uint64(i))
	return rand.NewChaCha8(seed)
}

// Write writes the tree below root with O_DIRECT (nothing of it stays in
// the page cache), writeWorkers files at a time, then syncs the
// filesystem (the directories and inodes).
func (t Tree) Write(ctx context.Context, root string) error {
	if err := t.Check(); err != nil {
		return err
	}
	for d := 0; d*filesPerDir < t.Files; d++ {
		if err := os.Mkdir(filepath.Join(root, filepath.Dir(t.Path(d*filesPerDir))), 0o755); err != nil {
			return err
		}
	}
	next := make(chan int)
	errc := make(chan error, writeWorkers)
	var wg sync.WaitGroup
	for range writeWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// O_DIRECT wants an aligned buffer: an anonymous mapping is.
			buf, err := unix.Mmap(-1, 0, chunk, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
			if err != nil {
				errc <- err
				return
			}
			defer unix.Munmap(buf)
			for i := range next {
				if err := t.writeFile(filepath.Join(root, t.Path(i)), i, buf); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	var err error
feed:
	for i := range t.Files {
		select {
		case next <- i:
		case err = <-errc:
			break feed
		case <-ctx.Done():
			err = ctx.Err()
			break feed
		}
	}
	close(next)
	wg.Wait()
	close(errc)
	if err == nil {
		err = <-errc // nil if none failed
	}
	if err != nil {
		return err
	}
	return Syncfs(root)
}

func (t Tree) writeFile(path string, i int, buf []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY|unix.O_DIRECT, 0o644)
	if err != nil {
		return err
	}
	r := t.content(i)
	for left := t.Size(i); left > 0; {
		b := buf[:min(left, int64(len(buf)))]
		_, _ = r.Read(b)
		if _, err := f.Write(b); err != nil {
			f.Close()
			return fmt.Errorf("%s: %w", path, err)
		}
		left -= int64(len(b))
	}
	return f.Close()
}

// Syncfs syncs the filesystem that holds path.
func Syncfs(path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Syncfs(fd)
}

// DropCaches syncs everything and drops the page cache, dentries and
// inodes (of the whole machine), so the next read comes from the disk.
func DropCaches() error {
	unix.Sync()
	return os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0)
}

// Verify checks that root holds the tree: exactly its number of regular
// files (and nothing else but its directories) of its total size, every
// file of the right size, and the content of every sampleEvery-th file
// (and the last) equal to what Write wrote (sha256 of both). It returns
// the number of files whose content it compared.
func (t Tree) Verify(ctx context.Context, root string, sampleEvery int) (int, error) {
	var files int
	var total int64
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		switch {
		case d.Type().IsRegular():
			fi, err := d.Info()
			if err != nil {
				return err
			}
			files++
			total += fi.Size()
		case !d.IsDir():
			return fmt.Errorf("%s: unexpected %v", p, d.Type())
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if files != t.Files || total != t.Bytes {
		return 0, fmt.Errorf("%s holds %d files of %d bytes, want %d of %d", root, files, total, t.Files, t.Bytes)
	}
	var sample []int
	for i := 0; i < t.Files; i += max(sampleEvery, 1) {
		sample = append(sample, i)
	}
	if sample[len(sample)-1] != t.Files-1 {
		sample = append(sample, t.Files-1)
	}
	for n, i := range sample {
		if err := t.verifyFile(root, i); err != nil {
			return n, err
		}
	}
	return len(sample), nil
}

func (t Tree) verifyFile(root string, i int) error {
	p := filepath.Join(root, t.Path(i))
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	got := sha256.New()
	n, err := io.Copy(got, f)
	if err != nil {
		return fmt.Errorf("%s: %w", p, err)
	}
	want := sha256.New()
	if _, err := io.CopyN(want, t.content(i), t.Size(i)); err != nil {
		return err
	}
	if n != t.Size(i) || !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		return fmt.Errorf("%s: %d bytes, sha256 %x; want %d bytes, sha256 %x", p, n, got.Sum(nil), t.Size(i), want.Sum(nil))
	}
	return nil
}

// ReadAll reads every regular file below root once, in order, with plain
// reads of 1 MiB (what a copy must read), and returns the bytes read.
func ReadAll(ctx context.Context, root string) (int64, error) {
	buf := make([]byte, chunk)
	var total int64
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		for {
			n, err := f.Read(buf)
			total += int64(n)
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
		}
	})
	return total, err
}
