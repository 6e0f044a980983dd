package hostile

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"

	"github.com/localdisk-csi/localdisk/test/testutil"
)

// TestPlanted_StatsAndDelete: symlinks (absolute, relative, to files and
// directories outside), a hard link to a file outside, a fifo, a socket,
// unreadable entries and a 2000-deep tree planted in a volume by its
// container never make stats, health or delete touch anything outside it.
func TestPlanted_StatsAndDelete(t *testing.T) {
	e := newEnv(t)
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			e := e.sub(t)
			v := e.published("planted-"+kind, kind)
			in := v.target
			ok := func(err error, what string) {
				if err != nil {
					t.Fatalf("planting %s: %v", what, err)
				}
			}
			ok(os.Symlink(e.outside, filepath.Join(in, "escape")), "symlink")
			ok(os.Symlink(filepath.Join(e.outside, "keep"), filepath.Join(in, "file-link")), "symlink")
			ok(os.Symlink("../../../../../../../../../.."+e.outside, filepath.Join(in, "rel-escape")), "symlink")
			ok(unix.Mkfifo(filepath.Join(in, "fifo"), 0o666), "fifo")
			l, err := net.Listen("unix", filepath.Join(in, "sock"))
			ok(err, "socket")
			l.(*net.UnixListener).SetUnlinkOnClose(false)
			l.Close()
			ok(os.MkdirAll(filepath.Join(in, "locked", "inner"), 0o755), "dir")
			ok(os.WriteFile(filepath.Join(in, "locked", "inner", "f"), []byte("x"), 0o000), "file")
			ok(os.Chmod(filepath.Join(in, "locked"), 0o000), "chmod")
			if kind == "root" { // same filesystem as the sentinel
				ok(os.Link(filepath.Join(e.outside, "hard"), filepath.Join(e.dataDir(kind, v.id), "hard")), "hard link")
			}
			deepTree(t, in, 2000, e.outside)

			ctx, cancel := e.Ctx()
			defer cancel()
			st, err := e.P.Node().NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: v.id, VolumePath: v.target})
			if err != nil {
				t.Errorf("NodeGetVolumeStats of a volume with planted entries: %v", err)
			} else if b := st.GetUsage()[0]; b.GetUsed() < 0 || b.GetAvailable() < 0 || b.GetTotal() <= 0 {
				t.Errorf("NodeGetVolumeStats: %v", st.GetUsage())
			}
			h, err := e.P.Node().NodeGetVolumeHealth(ctx, &csi.NodeGetVolumeHealthRequest{VolumeId: v.id})
			if err != nil {
				t.Errorf("NodeGetVolumeHealth of a volume with planted entries: %v", err)
			}
			for _, s := range h.GetVolumeHealth().GetHealthStatuses() { // DEGRADED: the tree outgrows 1 MiB
				if s.GetStatus() == csi.VolumeHealthErrorType_INACCESSIBLE {
					t.Errorf("NodeGetVolumeHealth of a volume with planted entries: %v", s)
				}
			}
			e.checkUntouched()
			e.teardown(v)
			e.checkUntouched()
			var s unix.Stat_t
			if err := unix.Stat(filepath.Join(e.outside, "hard"), &s); err != nil || s.Nlink != 1 {
				t.Errorf("the hard-linked file outside: %v, %d links", err, s.Nlink)
			}
			e.CheckConverged()
		})
	}
}

// deepTree makes depth nested directories "d" below dir (with *at calls, as
// the path outgrows PATH_MAX), and at the bottom a file and a symlink to
// escape.
func deepTree(t *testing.T, dir string, depth int, escape string) {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for range depth {
		if err := unix.Mkdirat(fd, "d", 0o755); err != nil {
			t.Fatal(err)
		}
		next, err := unix.Openat(fd, "d", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_NOFOLLOW, 0)
		unix.Close(fd)
		if err != nil {
			t.Fatal(err)
		}
		fd = next
	}
	defer unix.Close(fd)
	if err := unix.Symlinkat(escape, fd, "escape"); err != nil {
		t.Fatal(err)
	}
	f, err := unix.Openat(fd, "bottom", unix.O_CREAT|unix.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	unix.Write(f, []byte("bottom"))
	unix.Close(f)
}

// TestDelete_RacesSymlinkSwap: while DeleteVolume runs, a container (holding
// the volume's directory open) keeps swapping a directory of it, and a
// directory inside another one, for symlinks to a tree outside: nothing
// outside is ever deleted.
func TestDelete_RacesSymlinkSwap(t *testing.T) {
	e := newEnv(t)
	sentinel := testutil.FilesBelow(t, e.outside)
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			e := e.sub(t)
			for round := range 6 {
				id := e.MustCreate("swap-"+kind, sizeOf(kind), map[string]string{"pool": poolOf[kind]}).GetVolumeId()
				fill := func(dir string) {
					if err := os.MkdirAll(dir, 0o755); err != nil {
						t.Fatal(err)
					}
					for i := range 150 {
						os.WriteFile(filepath.Join(dir, "f"+string(rune('a'+i%26))+string(rune('a'+i/26))), nil, 0o644)
					}
				}
				data := e.dataDir(kind, id)
				fill(filepath.Join(data, "d", "inner"))
				fill(filepath.Join(data, "k", "sub"))
				fd, err := unix.Open(data, unix.O_DIRECTORY|unix.O_RDONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				kfd, err := unix.Openat(fd, "k", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_NOFOLLOW, 0)
				if err != nil {
					t.Fatal(err)
				}
				var stop atomic.Bool
				var wg sync.WaitGroup
				wg.Add(1)
				go func() { // the container
					defer wg.Done()
					for !stop.Load() {
						for _, at := range []struct {
							fd   int
							name string
						}{{fd, "d"}, {kfd, "sub"}} {
							if unix.Renameat(at.fd, at.name, at.fd, at.name+".x") == nil {
								unix.Symlinkat(e.outside, at.fd, at.name)
								unix.Unlinkat(at.fd, at.name, 0)
								unix.Renameat(at.fd, at.name+".x", at.fd, at.name)
							}
						}
					}
				}()
				derr := e.Delete(id)
				stop.Store(true)
				wg.Wait()
				unix.Close(kfd)
				unix.Close(fd)
				if now := testutil.FilesBelow(t, e.outside); !slices.Equal(now, sentinel) {
					t.Fatalf("round %d: DeleteVolume racing a symlink swap changed the tree outside:\n got %q\nwant %q", round, now, sentinel)
				}
				if derr != nil {
					t.Logf("round %d: DeleteVolume while the container raced: %v (retrying)", round, derr)
					e.Must(e.Delete(id), "delete once the container stopped")
				}
			}
			e.CheckConverged()
		})
	}
}
