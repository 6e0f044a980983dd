package hostile

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"

	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/test/testutil"
)

// snapEnv is a plugin serving a ROOT pool with `snapshots: copy` and one
// PATH pool on a loop disk of fstype (named testutil.PathPool, so the
// Env's PoolDir and VolumeDir helpers find it), with an "outside" tree
// next to the pools whose every entry's metadata must not change.
type snapEnv struct {
	*testutil.Env
	t       *testing.T
	fstype  string
	outside string
	stamps  map[string]stamp
}

// stamp is what reading or writing an outside entry would change.
type stamp struct {
	size         int64
	atim, mtim   unix.Timespec
	ctim         unix.Timespec
	ino          uint64
	mode, nlinks uint32
}

// snapPool says how a snapEnv's PATH pool is made.
type snapPool struct {
	fstype string // a testutil.LoopDisk type: ext4, xfs-reflink, btrfs
	mib    int    // the disk's size
	quota  string // the pool's `quota` (empty: auto)
	cap    int    // the pool's capacity in MiB
}

func newSnapEnv(t *testing.T, sp snapPool) *snapEnv {
	testutil.RequireRoot(t)
	dir := testutil.ShortTempDir(t)
	e := &testutil.Env{T: t, Dir: dir, RootDir: filepath.Join(dir, "root"), StateDir: filepath.Join(dir, "state"),
		CODir: filepath.Join(dir, "co")}
	e.PathDisk = testutil.LoopDisk(t, dir, sp.mib, sp.fstype)
	e.Must(os.MkdirAll(e.CODir, 0o750), "co dir")
	se := &snapEnv{Env: e, t: t, fstype: sp.fstype}
	e.Config = testutil.WriteConfig(t, dir, se.config(sp))
	e.P = testutil.StartPlugin(t, testutil.BuildPlugin(t), e.PluginOptions(nil))
	t.Cleanup(func() {
		detached, err := testutil.DetachMounts(e.CODir)
		if !t.Failed() && len(detached) > 0 {
			t.Errorf("left mounted under the CO's paths: %v", detached)
		}
		if err != nil {
			t.Errorf("detaching the CO's mounts: %v", err)
		}
	})
	se.makeOutside()
	return se
}

func (e *snapEnv) config(sp snapPool) string {
	c := fmt.Sprintf("pools:\n- name: %s\n  kind: root\n  path: %s\n  capacity: 40Mi\n  snapshots: copy\n"+
		"- name: %s\n  kind: path\n  path: %s\n  capacity: %dMi\n  snapshots: copy\n",
		testutil.RootPool, e.RootDir, testutil.PathPool, e.PathDisk, sp.cap)
	if sp.quota != "" {
		c += "  quota: " + sp.quota + "\n"
	}
	return c
}

// makeOutside makes the outside tree: files (with an access time two
// days old, so relatime updates it on any read), a directory, and a fifo
// that would block whoever opens it to read; it records their stamps and
// checks them again when the test ends.
func (e *snapEnv) makeOutside() {
	e.outside = filepath.Join(e.Dir, "outside")
	e.Must(os.MkdirAll(filepath.Join(e.outside, "dir"), 0o755), "outside")
	for _, f := range []string{"secret", "dir/keep"} {
		e.Must(os.WriteFile(filepath.Join(e.outside, f), []byte("outside "+f), 0o644), "outside")
	}
	e.Must(unix.Mkfifo(filepath.Join(e.outside, "fifo"), 0o644), "fifo")
	old := time.Now().Add(-48 * time.Hour)
	for _, f := range []string{"secret", "dir/keep", "fifo", "dir", "."} {
		e.Must(os.Chtimes(filepath.Join(e.outside, f), old, old), "chtimes")
	}
	e.stamps = e.stampAll()
	e.t.Cleanup(e.checkOutside)
}

// outsideEntries are the entries of the outside tree, stamped with
// lstat alone (listing a directory would update its access time).
var outsideEntries = []string{".", "secret", "dir", "dir/keep", "fifo", "/etc/passwd"}

func (e *snapEnv) stampAll() map[string]stamp {
	out := map[string]stamp{}
	for _, f := range outsideEntries {
		p := f
		if !filepath.IsAbs(p) {
			p = filepath.Join(e.outside, f)
		}
		var st unix.Stat_t
		e.Must(unix.Lstat(p, &st), "lstat "+p)
		out[f] = stamp{size: st.Size, atim: st.Atim, mtim: st.Mtim, ctim: st.Ctim, ino: st.Ino, mode: st.Mode, nlinks: uint32(st.Nlink)}
	}
	return out
}

// checkOutside fails the test if anything outside was read, written,
// added or removed. /etc/passwd's access time is not checked (any process
// on the host may read it); its change time and size are. It lists the
// outside directories last, then stamps them again.
func (e *snapEnv) checkOutside() {
	e.t.Helper()
	for f, got := range e.stampAll() {
		was := e.stamps[f]
		if f == "/etc/passwd" {
			got.atim = was.atim
		}
		if got != was {
			e.t.Errorf("outside: %s was read or written: %+v, was %+v", f, got, was)
		}
	}
	for dir, want := range map[string][]string{".": {"dir", "fifo", "secret"}, "dir": {"keep"}} {
		if got := top(e.t, filepath.Join(e.outside, dir)); !slices.Equal(got, want) {
			e.t.Errorf("outside: %s holds %q, want %q", dir, got, want)
		}
	}
	e.stamps = e.stampAll()
}

func poolParams(pool string) map[string]string { return map[string]string{"pool": pool} }

// snapshot calls CreateSnapshot until the snapshot is ready (a copy may
// answer ready_to_use=false first).
func (e *snapEnv) snapshot(name, src string) (*csi.Snapshot, error) {
	deadline := time.Now().Add(90 * time.Second)
	for {
		ctx, cancel := e.Ctx()
		r, err := e.P.Controller().CreateSnapshot(ctx, &csi.CreateSnapshotRequest{SourceVolumeId: src, Name: name})
		cancel()
		switch {
		case err != nil:
			return nil, err
		case r.GetSnapshot().GetReadyToUse():
			return r.GetSnapshot(), nil
		case time.Now().After(deadline):
			return nil, fmt.Errorf("snapshot %s of %s not ready after 90 s", name, src)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (e *snapEnv) mustSnapshot(name, src string) *csi.Snapshot {
	e.t.Helper()
	s, err := e.snapshot(name, src)
	e.Must(err, "CreateSnapshot "+name)
	return s
}

func (e *snapEnv) deleteSnapshot(id string) error {
	ctx, cancel := e.Ctx()
	defer cancel()
	_, err := e.P.Controller().DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: id})
	return err
}

func fromSnapshot(id string) *csi.VolumeContentSource {
	return &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
		Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: id}}}
}

func fromVolume(id string) *csi.VolumeContentSource {
	return &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Volume{
		Volume: &csi.VolumeContentSource_VolumeSource{VolumeId: id}}}
}

// createFrom calls CreateVolume in pool with a content source and a
// capacity range (nil: none).
func (e *snapEnv) createFrom(name, pool string, cr *csi.CapacityRange, src *csi.VolumeContentSource) (*csi.Volume, error) {
	ctx, cancel := e.Ctx()
	defer cancel()
	r, err := e.P.Controller().CreateVolume(ctx, &csi.CreateVolumeRequest{Name: name, Parameters: poolParams(pool),
		VolumeCapabilities: []*csi.VolumeCapability{testutil.RWO}, CapacityRange: cr, VolumeContentSource: src})
	return r.GetVolume(), err
}

func (e *snapEnv) mustCreateFrom(name, pool string, src *csi.VolumeContentSource) *csi.Volume {
	e.t.Helper()
	v, err := e.createFrom(name, pool, nil, src)
	e.Must(err, "CreateVolume "+name+" from a source")
	return v
}

// publish stages and publishes volume id.
func (e *snapEnv) publish(id string) vol {
	e.t.Helper()
	v := vol{id: id}
	v.staging, v.target = e.Paths(id)
	e.Must(e.Stage(v.id, v.staging), "stage "+id)
	e.Must(e.Publish(v.id, v.staging, v.target, false), "publish "+id)
	e.t.Cleanup(func() { // also when the test fails before its teardown
		e.Unpublish(v.id, v.target)
		e.Unstage(v.id, v.staging)
	})
	return v
}

// snapDir is where the data of snapshot id of pool lies.
func (e *snapEnv) snapDir(pool, id string) string {
	return filepath.Join(layout.PoolSnapshotsDir(e.PoolDir(pool)), id)
}

// leftovers lists, for a pool, its volume directories, its snapshot
// directories, the volume and snapshot records and the restore intents.
func (e *snapEnv) leftovers(pool string) map[string][]string {
	ls := func(dir string) []string {
		ents, err := os.ReadDir(dir)
		if err != nil && !os.IsNotExist(err) {
			e.t.Errorf("reading %s: %v", dir, err)
		}
		var out []string
		for _, ent := range ents {
			out = append(out, ent.Name())
		}
		return out
	}
	vols, _ := e.PoolDirs(pool)
	return map[string][]string{
		"volume dirs":      vols,
		"snapshot dirs":    ls(layout.PoolSnapshotsDir(e.PoolDir(pool))),
		"volume records":   ls(e.RecordsDir()),
		"snapshot records": ls(filepath.Join(e.StateDir, layout.SnapshotsDir)),
		"restore intents":  ls(filepath.Join(e.StateDir, layout.RestoresDir)),
	}
}

// sameLeftovers fails the test unless the two listings are equal.
func (e *snapEnv) sameLeftovers(what string, got, want map[string][]string) {
	e.t.Helper()
	for k, w := range want {
		if !slices.Equal(got[k], w) {
			e.t.Errorf("%s: %s are %q, were %q", what, k, got[k], w)
		}
	}
}
