package copytree

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/localdisk-csi/localdisk/test/testutil"
	"golang.org/x/sys/unix"
)

// BenchmarkCopy copies a tree of 1,000 files of 64 KiB (in 10
// directories): Full on ext4 and Reflink on XFS, each on a loop disk of
// its own; the copy is removed between iterations, outside the timer.
// The time includes the final syncfs.
func BenchmarkCopy(b *testing.B) {
	for _, c := range []struct {
		fstype string
		m      Method
	}{{"ext4", Full}, {"xfs", Reflink}} {
		b.Run(fmt.Sprintf("%v-%s", c.m, c.fstype), func(b *testing.B) {
			disk := testutil.LoopDisk(b, testutil.ShortTempDir(b), 512, c.fstype)
			src := filepath.Join(disk, "src")
			for d := range 10 {
				sub := filepath.Join(src, fmt.Sprintf("dir%d", d))
				must(b, os.MkdirAll(sub, 0o755))
				for f := range 100 {
					writeFile(b, filepath.Join(sub, fmt.Sprintf("file%03d", f)), 64<<10, uint64(d*100+f))
				}
			}
			unix.Sync()
			sf := openDir(b, src)
			b.SetBytes(1000 * 64 << 10)
			b.ResetTimer()
			for i := range b.N {
				b.StopTimer()
				dst := filepath.Join(disk, fmt.Sprintf("dst%d", i))
				must(b, os.Mkdir(dst, 0o700))
				df, err := os.Open(dst)
				must(b, err)
				b.StartTimer()
				st, err := Copy(context.Background(), sf, df, c.m)
				b.StopTimer()
				df.Close()
				if err != nil {
					b.Fatalf("Copy: %v", err)
				}
				if st.Files != 1000 {
					b.Fatalf("copied %d files, want 1000", st.Files)
				}
				must(b, os.RemoveAll(dst))
				unix.Sync()
				b.StartTimer()
			}
		})
	}
}
