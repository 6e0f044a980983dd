package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/hack/bench/load"
)

// snapFS is one filesystem the snapshot bench measures, and the method
// its pool must report.
type snapFS struct {
	name, fstype, method string
	mkfs                 []string
	pool                 string // the pool's extra lines in the pools file
}

var snapFilesystems = []snapFS{
	{name: "btrfs", fstype: "btrfs", method: "btrfs", mkfs: []string{"mkfs.btrfs", "-f", "-q"},
		pool: "  quota: required\n"}, // quotas on: volumes are subvolumes
	{name: "xfs", fstype: "xfs", method: "reflink", mkfs: []string{"mkfs.xfs", "-f", "-q", "-m", "reflink=1"}},
	{name: "ext4", fstype: "ext4", method: "copy", mkfs: []string{"mkfs.ext4", "-F", "-q", "-m", "0"},
		pool: "  snapshots: copy\n"},
}

// snapPool is the name of the one PATH pool of each filesystem's plugin.
const snapPool = "snap"

// runSnapshots measures, on each filesystem in turn (its own loop disk
// and its own plugin), a snapshot and a restore of a volume holding each
// data size, and prints the table.
func runSnapshots(ctx context.Context, o *options, dir, bin string) error {
	rep := &snapReport{o: o, loadBefore: loadAvg(), started: time.Now()}
	defer func() { rep.print(os.Stdout) }()
	for _, fs := range snapFilesystems {
		if !o.snapFS[fs.name] {
			continue
		}
		if err := snapOneFS(ctx, o, filepath.Join(dir, fs.name), bin, fs, rep); err != nil {
			rep.failed = fmt.Sprintf("%s: %v", fs.name, err)
			return fmt.Errorf("%s: %w", fs.name, err)
		}
	}
	return nil
}

func snapOneFS(ctx context.Context, o *options, dir, bin string, fs snapFS, rep *snapReport) (err error) {
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	// Room for the source, the snapshot and the restored volume of the
	// largest size, each with its capacity's slack, and the filesystem's
	// own; and one capacity more: where capacities are not enforced the
	// plugin also keeps free what a copied snapshot is charged, as if its
	// data were still to be written (capacity.Room). The image is sparse.
	largest := volCapacity(o.snapSizes[len(o.snapSizes)-1])
	imageSize := 4*largest + 4<<30
	progress("%s: making a %s loop disk of %d GiB (sparse)", fs.name, fs.fstype, imageSize>>30)
	disk, err := load.NewLoopDisk(ctx, dir, imageSize, fs.mkfs, fs.fstype, "")
	if err != nil {
		return err
	}
	defer func() {
		if cerr := disk.Close(); cerr != nil {
			err = errors.Join(err, fmt.Errorf("removing the loop disk: %w", cerr))
		}
	}()
	rep.directIO = disk.DirectIO
	pools := fmt.Sprintf("pools:\n- name: %s\n  kind: path\n  path: %s\n%s", snapPool, disk.Mountpoint, fs.pool)
	in, err := load.NewInstanceWithPools(dir, bin, pools)
	if err != nil {
		return err
	}
	in.LogLevel = o.logLevel
	if _, err := in.Start(ctx); err != nil {
		return err
	}
	defer func() {
		p := in.Proc
		if serr := in.Stop(); serr != nil {
			err = errors.Join(err, fmt.Errorf("the plugin did not stop cleanly: %w\n%s", serr, p.LogTail(4096)))
		}
	}()
	if rep.version == "" {
		rep.version = binVersion(in)
	}
	if err := checkMethod(in, fs.method); err != nil {
		return err
	}
	conn, err := load.Dial(in.Endpoint)
	if err != nil {
		return err
	}
	defer conn.Close()
	s := &snapSession{o: o, c: load.NewSnapClient(conn), disk: disk, co: filepath.Join(dir, "co"), fs: fs}
	if err := load.Prepare(load.Config{Dir: s.co}); err != nil {
		return err
	}
	for _, size := range o.snapSizes {
		row, err := s.measure(ctx, size)
		if row != nil {
			rep.rows = append(rep.rows, *row)
		}
		if err != nil {
			return fmt.Errorf("%s of data: %w", gib(size), err)
		}
	}
	return nil
}

// checkMethod asks the plugin (localdisk status) which method its pool
// uses: the figures are of that method only.
func checkMethod(in *load.Instance, want string) error {
	out, err := exec.Command(in.Bin, "status", "--endpoint", in.Endpoint, "-o", "json").Output()
	if err != nil {
		return fmt.Errorf("localdisk status: %w", err)
	}
	var st struct {
		Pools []struct {
			Name, Snapshots, SnapshotsWhyNot string
		}
	}
	if err := json.Unmarshal(out, &st); err != nil {
		return fmt.Errorf("localdisk status: %w", err)
	}
	for _, p := range st.Pools {
		if p.Name == snapPool {
			if p.Snapshots != want {
				return fmt.Errorf("pool %s snapshots by %q (%s), want %q", p.Name, p.Snapshots, p.SnapshotsWhyNot, want)
			}
			return nil
		}
	}
	return fmt.Errorf("localdisk status lists no pool %s:\n%s", snapPool, out)
}

// volCapacity is the capacity of a volume that holds size bytes in
// --snapshot-files files: an eighth more and 256 MiB for the filesystem's
// metadata, in whole MiB.
func volCapacity(size int64) int64 {
	return (size + size/8 + 256<<20) &^ (1<<20 - 1)
}

// snapSession measures on one filesystem's pool.
type snapSession struct {
	o    *options
	c    *load.SnapClient
	disk *load.LoopDisk
	co   string
	fs   snapFS
}

// measure makes a volume of size bytes in o.snapFiles files, measures the
// physical references on its data, then the snapshot, the restore and the
// deletes, and checks the restored data. Everything it made is deleted
// before it returns, also on an error (what cannot be is reported).
func (s *snapSession) measure(ctx context.Context, size int64) (row *snapRow, err error) {
	tree := load.Tree{Bytes: size, Files: s.o.snapFiles, Seed: uint64(size)}
	if err := tree.Check(); err != nil {
		return nil, err
	}
	capacity := volCapacity(size)
	tag := fmt.Sprintf("%s-%dm", s.fs.name, size>>20)
	row = &snapRow{fs: s.fs.name, method: s.fs.method, bytes: size, files: tree.Files}
	// Undo in reverse order, with a context of its own (ctx may be done).
	var undo []func(context.Context) error
	defer func() {
		uctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		for i := len(undo) - 1; i >= 0; i-- {
			if uerr := undo[i](uctx); uerr != nil {
				err = errors.Join(err, fmt.Errorf("cleanup: %w", uerr))
			}
		}
		if terr := s.disk.Trim(uctx); terr != nil {
			err = errors.Join(err, terr)
		}
	}()

	progress("%s: %s in %d files: creating and filling the source volume", s.fs.name, gib(size), tree.Files)
	src, err := s.c.Create(ctx, "src-"+tag, capacity, nil)
	if err != nil {
		return row, fmt.Errorf("CreateVolume: %w", err)
	}
	undo = append(undo, func(c context.Context) error { return s.c.Delete(c, src) })
	t0 := time.Now()
	if err := s.c.WithPublished(ctx, src, s.co, "src-"+tag, func(target string) error { return tree.Write(ctx, target) }); err != nil {
		return row, fmt.Errorf("filling the source: %w", err)
	}
	row.write = time.Since(t0)
	srcDir := layout.VolumeDir(s.disk.Mountpoint, src.ID)

	// The physical references, each from a cold cache, on the same data.
	if row.read, err = cold(ctx, func() error {
		n, err := load.ReadAll(ctx, srcDir)
		if err == nil && n != size {
			err = fmt.Errorf("read %d bytes of %s, want %d", n, srcDir, size)
		}
		return err
	}); err != nil {
		return row, fmt.Errorf("reading the source: %w", err)
	}
	progress("%s: %s: references (read %v)", s.fs.name, gib(size), row.read.Round(time.Millisecond))
	refs := []struct {
		d       *time.Duration
		reflink string
	}{{&row.cpFull, "never"}}
	if s.fs.method != "copy" {
		refs = append(refs, struct {
			d       *time.Duration
			reflink string
		}{&row.cpReflink, "always"})
	}
	if s.fs.method == "btrfs" {
		// What the method itself costs: a read-only snapshot of the
		// volume's subvolume with the btrfs tool.
		dst := filepath.Join(s.disk.Mountpoint, "bench-snap")
		row.btrfsSnap, err = cold(ctx, func() error {
			_, err := load.Command(ctx, "btrfs", "subvolume", "snapshot", "-r", srcDir, dst)
			return err
		})
		if err == nil {
			_, err = load.Command(ctx, "btrfs", "subvolume", "delete", dst)
		}
		if err != nil {
			return row, fmt.Errorf("btrfs subvolume snapshot: %w", err)
		}
	}
	for _, r := range refs {
		dst := filepath.Join(s.disk.Mountpoint, "bench-cp-"+r.reflink)
		*r.d, err = cold(ctx, func() error {
			if _, err := load.Command(ctx, "cp", "-a", "--reflink="+r.reflink, srcDir, dst); err != nil {
				return err
			}
			return load.Syncfs(dst) // as the plugin's copy ends with syncfs
		})
		if rerr := os.RemoveAll(dst); rerr != nil {
			err = errors.Join(err, rerr)
		}
		if err == nil {
			err = load.Syncfs(s.disk.Mountpoint)
		}
		if err == nil {
			err = s.disk.Trim(ctx)
		}
		if err != nil {
			return row, fmt.Errorf("cp -a --reflink=%s: %w", r.reflink, err)
		}
	}

	progress("%s: %s: CreateSnapshot", s.fs.name, gib(size))
	free0, err := freeBytes(s.disk.Mountpoint)
	if err != nil {
		return row, err
	}
	var snapID string
	row.snapshot, err = cold(ctx, func() error {
		var err error
		snapID, row.snapCalls, err = s.c.Snapshot(ctx, "snap-"+tag, src.ID)
		return err
	})
	if snapID != "" {
		undo = append(undo, func(c context.Context) error { return s.c.DeleteSnapshot(c, snapID) })
	}
	if err != nil {
		return row, fmt.Errorf("CreateSnapshot: %w", err)
	}
	if err := load.Syncfs(s.disk.Mountpoint); err != nil {
		return row, err
	}
	free1, err := freeBytes(s.disk.Mountpoint)
	if err != nil {
		return row, err
	}
	row.snapSpace = free0 - free1

	progress("%s: %s: CreateVolume from the snapshot", s.fs.name, gib(size))
	var dst load.Vol
	row.restore, err = cold(ctx, func() error {
		var err error
		dst, row.restoreCalls, err = s.c.Restore(ctx, "restored-"+tag, capacity, snapID, s.o.snapTimeout)
		return err
	})
	if dst.ID != "" {
		undo = append(undo[:len(undo)-1], func(c context.Context) error { return s.c.Delete(c, dst) }, undo[len(undo)-1])
	}
	if err != nil {
		return row, fmt.Errorf("CreateVolume from %s: %w", snapID, err)
	}

	progress("%s: %s: checking the restored volume", s.fs.name, gib(size))
	if err := load.DropCaches(); err != nil {
		return row, err
	}
	if err := s.c.WithPublished(ctx, dst, s.co, "restored-"+tag, func(target string) error {
		var err error
		row.sampled, err = tree.Verify(ctx, target, max(tree.Files/100, 1))
		return err
	}); err != nil {
		return row, fmt.Errorf("the restored volume: %w", err)
	}

	// The deletes, timed; the undo list is then empty.
	t0 = time.Now()
	err = s.c.DeleteSnapshot(ctx, snapID)
	row.delSnapshot = time.Since(t0)
	if err != nil {
		return row, fmt.Errorf("DeleteSnapshot: %w", err)
	}
	undo = undo[:len(undo)-1]
	t0 = time.Now()
	err = s.c.Delete(ctx, dst)
	row.delRestored = time.Since(t0)
	if err != nil {
		return row, fmt.Errorf("DeleteVolume (restored): %w", err)
	}
	undo = undo[:len(undo)-1]
	row.ok = true
	return row, nil
}

// cold drops the page cache, then times f.
func cold(ctx context.Context, f func() error) (time.Duration, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := load.DropCaches(); err != nil {
		return 0, fmt.Errorf("drop caches: %w", err)
	}
	t0 := time.Now()
	err := f()
	return time.Since(t0), err
}

func gib(b int64) string {
	if b%(1<<30) == 0 {
		return fmt.Sprintf("%d GiB", b>>30)
	}
	return fmt.Sprintf("%d MiB", b>>20)
}

// parseSizes parses a list like "1Gi,8Gi" (ascending).
func parseSizes(s string) ([]int64, error) {
	var out []int64
	for _, f := range strings.Split(s, ",") {
		n, err := parseSize(strings.TrimSpace(f))
		if err != nil {
			return nil, err
		}
		if len(out) > 0 && n <= out[len(out)-1] {
			return nil, fmt.Errorf("sizes must ascend: %q", s)
		}
		out = append(out, n)
	}
	return out, nil
}
