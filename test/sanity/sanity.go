// Package sanity runs csi-sanity (github.com/kubernetes-csi/csi-test)
// against the real localdisk binary, serving one pool, with real mounts.
//
// Ginkgo, which csi-sanity is built on, runs one suite per process, so each
// pool kind has its own test package below this one (root, path, mount),
// and they share Run. The tests need root, and run once per process
// (go test -count=1).
package sanity

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	csisanity "github.com/kubernetes-csi/csi-test/v5/pkg/sanity"
	"github.com/onsi/ginkgo/v2"
	"golang.org/x/sys/unix"

	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/test/testutil"
)

const (
	// NodeID is the node ID the plugin runs with.
	NodeID = "sanity-node"

	// recordsTimeout bounds the wait for deleted volumes' records to go
	// (deletion may finish in the background).
	recordsTimeout = 30 * time.Second
)

// ran is set by the first Run. Ginkgo exits the whole process when a
// second suite starts in it, so a second Run fails its test instead.
var ran atomic.Bool

// Options describe one csi-sanity run.
type Options struct {
	// Dir is the test's directory, from testutil.ShortTempDir; the socket,
	// state, config, target and staging paths are made in it.
	Dir string
	// Config is the pools file (YAML).
	Config string
	// Pool is the pool that csi-sanity's volumes are created in (the
	// "pool" parameter of CreateVolume).
	Pool string
	// VolumeSize is csi-sanity's TestVolumeSize in bytes.
	VolumeSize int64
	// ExpandSize is csi-sanity's TestVolumeExpandSize in bytes (default:
	// twice VolumeSize).
	ExpandSize int64
	// AccessType is csi-sanity's TestVolumeAccessType: "mount" (default)
	// or "block".
	AccessType string
	// Disks are the mount points of loop disks below Dir, which must still
	// be mounted, each once, at the end.
	Disks []string
	// NoSnapshots skips the specs that need a snapshot or a clone to
	// succeed: the pool cannot make them (a MOUNT pool).
	NoSnapshots bool
}

// snapshotSpecs are the csi-sanity specs that need a snapshot or a clone
// to be made.
const snapshotSpecs = `Snapshots? \[Controller Server\]|should create volume from an existing source`

// Run starts the plugin with o.Config, runs csi-sanity against it, and
// then checks that nothing the plugin mounted is left below o.Dir, that
// no volume record is left in its state directory, and that it stops
// cleanly on SIGTERM. A mount left below csi-sanity's target or staging
// directory after a spec fails the test, naming the spec.
func Run(t *testing.T, o Options) {
	testutil.RequireRoot(t)
	// Ginkgo refuses -count other than 1 by exiting the process, which
	// would skip every cleanup: fail first, cleanly.
	if f := flag.Lookup("test.count"); f != nil && f.Value.String() != "1" {
		t.Fatalf("csi-sanity (Ginkgo) supports only -count=1, not -count=%s", f.Value)
	}
	if ran.Swap(true) {
		t.Fatal("csi-sanity can run only once per process: give each run its own test package")
	}
	bin := testutil.BuildPlugin(t)
	stateDir := filepath.Join(o.Dir, "state")
	p := testutil.StartPlugin(t, bin, testutil.PluginOptions{
		Endpoint:   filepath.Join(o.Dir, "csi.sock"),
		NodeID:     NodeID,
		StateDir:   stateDir,
		ConfigPath: testutil.WriteConfig(t, o.Dir, o.Config),
	})

	cfg := csisanity.NewTestConfig()
	cfg.Address = p.Address()
	cfg.TargetPath = filepath.Join(o.Dir, "target")
	cfg.StagingPath = filepath.Join(o.Dir, "staging")
	cfg.TestVolumeParameters = map[string]string{layout.ParamPool: o.Pool}
	cfg.TestVolumeSize = o.VolumeSize
	cfg.TestVolumeAccessType = o.AccessType
	cfg.TestVolumeExpandSize = o.ExpandSize
	if cfg.TestVolumeExpandSize == 0 {
		cfg.TestVolumeExpandSize = 2 * o.VolumeSize
	}
	if o.NoSnapshots {
		if err := flag.Set("ginkgo.skip", snapshotSpecs); err != nil {
			t.Fatalf("skipping the snapshot specs: %v", err)
		}
	}
	var leaks leakCheck
	cfg.RemoveTargetPath = leaks.remove
	cfg.RemoveStagingPath = leaks.remove
	csisanity.Test(t, cfg)
	leaks.report(t)

	checkMounts(t, o.Dir, o.Disks)
	checkNoRecords(t, layout.StateRecordsDir(stateDir), recordsTimeout)
	checkNoRecords(t, filepath.Join(stateDir, layout.SnapshotsDir), recordsTimeout)
	checkNoRecords(t, filepath.Join(stateDir, layout.RestoresDir), recordsTimeout)
	p.Stop()
}

// leakCheck replaces csi-sanity's removal of its target and staging
// directories after each spec (a plain rmdir, whose error it ignores, so a
// leftover mount or file would make every later spec fail on mkdir). It
// notes what the spec left behind, detaches leftover mounts, and removes
// the directory.
type leakCheck struct {
	mu       sync.Mutex
	mounts   []string // errors: mounts left behind
	nonEmpty []string // notes: directories not empty
}

// remove is a csisanity.TestConfig.RemoveTargetPath (or StagingPath).
func (l *leakCheck) remove(path string) error {
	spec := ginkgo.CurrentSpecReport().FullText()
	detached, err := testutil.DetachMounts(path)
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, mp := range detached {
		l.mounts = append(l.mounts, fmt.Sprintf("%s: left mounted after %q", mp, spec))
	}
	if err != nil {
		l.mounts = append(l.mounts, fmt.Sprintf("%s: after %q: %v", path, spec, err))
		return err // never remove what may still be mounted
	}
	if err := os.Remove(path); err == nil || os.IsNotExist(err) {
		return nil
	}
	entries, _ := os.ReadDir(path)
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	l.nonEmpty = append(l.nonEmpty, fmt.Sprintf("%s: %q left after %q", path, names, spec))
	return os.RemoveAll(path)
}

// report fails t for each leftover mount and logs each leftover entry.
func (l *leakCheck) report(t testing.TB) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.mounts {
		t.Error(m)
	}
	for _, n := range l.nonEmpty {
		t.Log(n)
	}
}

// checkMounts fails the test if anything but the disks, each mounted
// once, is mounted below dir.
func checkMounts(t testing.TB, dir string, disks []string) {
	t.Helper()
	left := testutil.Mounts(t, dir)
	for _, disk := range disks {
		i := slices.Index(left, disk)
		if i < 0 {
			t.Errorf("disk %s is no longer mounted", disk)
			continue
		}
		left = slices.Delete(left, i, i+1)
	}
	for _, mp := range left {
		t.Errorf("left mounted after csi-sanity: %s", mp)
	}
}

// checkNoRecords waits until the directory of volume records holds no
// file, and fails the test if some are still there after timeout.
func checkNoRecords(t testing.TB, dir string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		files, err := filesBelow(dir)
		if err != nil {
			t.Errorf("listing volume records: %v", err)
			return
		}
		if len(files) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("volume records left after csi-sanity deleted every volume: %q", files)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// filesBelow returns the paths of the non-directories below dir, which
// need not exist.
func filesBelow(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) && path == dir {
				return filepath.SkipDir
			}
			return err
		}
		if !d.IsDir() {
			files = append(files, path)
		}
		return nil
	})
	return files, err
}

// FilesystemSize returns the size of the filesystem mounted at mountpoint
// (statfs f_blocks * f_bsize) rounded down to a whole MiB: the capacity
// the plugin gives a MOUNT volume on that disk.
func FilesystemSize(t *testing.T, mountpoint string) int64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(mountpoint, &st); err != nil {
		t.Fatalf("statfs %s: %v", mountpoint, err)
	}
	const mib = 1 << 20
	return int64(st.Blocks) * st.Bsize / mib * mib
}
