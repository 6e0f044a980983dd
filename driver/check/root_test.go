package check

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/sys/mountinfo"
	"github.com/sirupsen/logrus"
	logtest "github.com/sirupsen/logrus/hooks/test"
	"golang.org/x/sys/unix"

	"github.com/localdisk-csi/localdisk/driver/pool"
	"github.com/localdisk-csi/localdisk/driver/quota"
	"github.com/localdisk-csi/localdisk/driver/volume"
	"github.com/localdisk-csi/localdisk/test/testutil"
)

// parse parses a pools file for a test.
func parse(t *testing.T, yaml string) *pool.Config {
	t.Helper()
	cfg, err := pool.Parse([]byte(yaml), "")
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// about returns the findings of one subject.
func about(fs []Finding, subject string) []Finding {
	var out []Finding
	for _, f := range fs {
		if f.Subject == subject {
			out = append(out, f)
		}
	}
	return out
}

// expect fails unless the subject's findings are, in order, of the levels
// given and each holds its text.
func expect(t *testing.T, fs []Finding, subject string, want ...string) {
	t.Helper()
	got := about(fs, subject)
	if len(got) != len(want) {
		t.Fatalf("%s: %d findings %v, want %d %q", subject, len(got), got, len(want), want)
	}
	for i, w := range want {
		level, text, _ := strings.Cut(w, " ")
		if string(got[i].Level) != level || !strings.Contains(got[i].Message, text) {
			t.Errorf("%s: finding %d is %v, want %s with %q", subject, i, got[i], level, text)
		}
	}
}

// snapshot lists every path under dir, to prove a check wrote nothing.
func snapshot(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil {
			fmt.Fprintf(&b, "%s %v %d\n", p, fi.Mode(), fi.Size())
		}
		return nil
	})
	return b.String()
}

// servesAlike starts the real volume manager on the inputs after the check
// and fails unless the pools its start-up finds unhealthy (and logs so) are
// exactly those the check failed: check and serve agree.
func servesAlike(t *testing.T, state string, cfg *pool.Config, fs []Finding) {
	t.Helper()
	log, hook := logtest.NewNullLogger()
	m, err := volume.New(state, cfg, logrus.NewEntry(log))
	if err != nil {
		t.Fatalf("serve would not start: %v", err)
	}
	defer m.Close()
	unhealthy := map[string]bool{}
	for _, e := range hook.AllEntries() {
		if strings.HasPrefix(e.Message, "pool unhealthy") {
			unhealthy[e.Data["pool"].(string)] = true
		}
	}
	for _, p := range m.Pools() {
		failed := false
		for _, f := range about(fs, "pool "+p.Name) {
			failed = failed || f.Level == Fail
		}
		if failed != unhealthy[p.Name] {
			t.Errorf("pool %s: the check failed it: %v, start-up found it unhealthy: %v", p.Name, failed, unhealthy[p.Name])
		}
	}
}

func TestRootAndPathPools(t *testing.T) {
	testutil.RequireRoot(t)
	dir := testutil.ShortTempDir(t)
	state := filepath.Join(dir, "state")
	notMounted := filepath.Join(dir, "plain")
	if err := os.Mkdir(notMounted, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := parse(t, fmt.Sprintf(`pools:
- {name: root, kind: root, path: %s/root}
- {name: plain, kind: path, path: %s}
- {name: gone, kind: path, path: %s/gone}
- {name: free, kind: root, path: %s/free, quota: "off"}
`, dir, notMounted, dir, dir))
	before := snapshot(t, dir)
	fs := Run(Config{StateDir: state, Pools: cfg, Records: true})
	if after := snapshot(t, dir); after != before {
		t.Errorf("the check changed the files:\n%s\nwas:\n%s", after, before)
	}
	expect(t, fs, "state-dir", "ok does not exist yet: serve makes it")
	expect(t, fs, "pool root", "ok does not exist yet: serve makes it", "warn capacity accounted, not enforced", "ok snapshots and clones: none")
	expect(t, fs, "pool plain", "warn is not its own mount", "warn capacity accounted", "ok snapshots and clones: none")
	expect(t, fs, "pool gone", "fail no such file or directory")
	expect(t, fs, "pool free", "ok does not exist yet", "ok (quota: off)", "ok snapshots and clones: none")
	expect(t, fs, "kernel", "ok Linux")
	expect(t, fs, "mount", "ok binds use")
	servesAlike(t, state, cfg, fs)

	// Once initialised, the same pools are found by their markers.
	fs = Run(Config{StateDir: state, Pools: cfg, Records: true})
	expect(t, fs, "pool root", "ok its marker is the recorded one", "warn capacity accounted", "ok snapshots and clones: none")
	expect(t, fs, "state-dir", "ok is writable", "ok 0 volume records")
	if err := os.Remove(filepath.Join(dir, "root", "localdisk", "pool.json")); err != nil {
		t.Fatal(err)
	}
	fs = Run(Config{StateDir: state, Pools: cfg})
	expect(t, fs, "pool root", "fail is unhealthy")
	servesAlike(t, state, cfg, fs)
}

// TestOptionalPools: an optional PATH pool whose path does not exist and
// an optional MOUNT pool none of whose disks is there are ok, absent, and
// serve does not find them unhealthy; one that is not optional fails.
func TestOptionalPools(t *testing.T) {
	testutil.RequireRoot(t)
	dir := testutil.ShortTempDir(t)
	state := filepath.Join(dir, "state")
	if err := os.Mkdir(filepath.Join(dir, "d1"), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := parse(t, fmt.Sprintf(`pools:
- {name: root, kind: root, path: %s/root, quota: "off"}
- {name: maybe, kind: path, path: %s/maybe, optional: true}
- {name: spare, kind: mount, optional: true, disks: [{path: %s/d1}, {path: %s/d2}]}
- {name: gone, kind: path, path: %s/gone}
`, dir, dir, dir, dir, dir))
	fs := Run(Config{StateDir: state, Pools: cfg, Records: true})
	expect(t, fs, "pool maybe", "ok absent (optional): "+dir+"/maybe does not exist on this node")
	expect(t, fs, "pool spare", "ok absent (optional): none of its 2 disks is on this node")
	expect(t, fs, "disk "+dir+"/d1")
	expect(t, fs, "pool gone", "fail no such file or directory")
	if !Failed(fs) {
		t.Errorf("the pool that is not optional does not fail the check")
	}
	servesAlike(t, state, cfg, fs)
}

func TestStateDir(t *testing.T) {
	testutil.RequireRoot(t)
	dir := testutil.ShortTempDir(t)
	mp := testutil.LoopDisk(t, dir, 32, "ext4")
	cfg := pool.Default(mp)
	if err := os.MkdirAll(filepath.Join(mp, "volumes"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mp, "volumes", "junk"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	fs := Run(Config{StateDir: mp, Pools: cfg, Records: true})
	expect(t, fs, "state-dir", "ok is writable", "fail 1 of 1 volume records cannot be read: serve refuses to start")
	if err := unix.Mount("", mp, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Fatal(err)
	}
	fs = Run(Config{StateDir: mp, Pools: cfg, Records: true})
	expect(t, fs, "state-dir", "fail is not writable")
	if !Failed(fs) {
		t.Error("a read-only state dir must fail the check")
	}
	if entries, _ := os.ReadDir(mp); len(entries) != 2 { // lost+found, volumes
		t.Errorf("the state dir holds %v", entries)
	}
}

// remountPrjquota mounts the device of the loop disk at mp again with
// prjquota, as /etc/fstab would.
func remountPrjquota(t *testing.T, mp string) {
	t.Helper()
	infos, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter(mp))
	if err != nil || len(infos) != 1 {
		t.Fatalf("the mount at %s: %v %v", mp, infos, err)
	}
	testutil.UnplugDisk(t, mp)
	err = unix.Mount(infos[0].Source, mp, infos[0].FSType, 0, "prjquota")
	if errors.Is(err, unix.EINVAL) {
		t.Skipf("this kernel's %s has no quota support (mount -o prjquota: %v)", infos[0].FSType, err)
	}
	if err != nil {
		t.Fatalf("mounting %s with prjquota: %v", infos[0].Source, err)
	}
}

func TestXFSPathPool(t *testing.T) {
	testutil.RequireRoot(t)
	dir := testutil.ShortTempDir(t)
	mp := testutil.LoopDisk(t, dir, 300, "xfs")
	cfg := parse(t, fmt.Sprintf("pools:\n- {name: data, kind: path, path: %s}\n- {name: strict, kind: root, path: %s/strict, quota: required}\n", mp, dir))
	fs := Run(Config{StateDir: filepath.Join(dir, "state"), Pools: cfg})
	expect(t, fs, "pool data", "ok xfs at "+mp+" (its own mount)", "warn is not mounted with prjquota", "ok snapshots and clones: reflink")
	// quota: required where it cannot be enforced: the pool is unhealthy.
	expect(t, fs, "pool strict", "ok does not exist yet", "fail quota: required, but capacity cannot be enforced", "ok snapshots and clones: none")
	servesAlike(t, filepath.Join(dir, "state"), cfg, fs)
	remountPrjquota(t, mp)
	fs = Run(Config{StateDir: filepath.Join(dir, "state"), Pools: cfg})
	expect(t, fs, "pool data", "ok xfs at "+mp+" (its own mount)", "ok capacity enforced by project quotas (xfs with prjquota)", "ok snapshots and clones: reflink")
}

func TestBtrfsPathPool(t *testing.T) {
	testutil.RequireRoot(t)
	dir := testutil.ShortTempDir(t)
	off := testutil.LoopDisk(t, dir, 256, "btrfs")
	on := testutil.LoopDisk(t, dir, 256, "btrfs")
	cfg := parse(t, fmt.Sprintf(`pools:
- {name: auto, kind: path, path: %s}
- {name: required, kind: path, path: %s, quota: required}
`, off, on))
	fs := Run(Config{StateDir: filepath.Join(dir, "state"), Pools: cfg})
	expect(t, fs, "pool auto", "ok btrfs at", "warn btrfs quotas are not enabled", "ok snapshots and clones: reflink")
	expect(t, fs, "pool required", "ok btrfs at", "ok serve enables them", "ok snapshots and clones: btrfs")
	f, err := os.Open(on)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if enabled, err := quota.QuotaEnabled(f); err != nil || enabled {
		t.Fatalf("after the check, quotas enabled: %v, %v: the check must enable nothing", enabled, err)
	}
	g, err := os.Open(off)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if err := quota.EnableQuota(g); err != nil {
		t.Fatal(err)
	}
	fs = Run(Config{StateDir: filepath.Join(dir, "state"), Pools: cfg})
	expect(t, fs, "pool auto", "ok btrfs at", "ok capacity enforced by btrfs qgroups", "ok snapshots and clones: btrfs")
}

func TestMountPoolDisks(t *testing.T) {
	testutil.RequireRoot(t)
	dir := testutil.ShortTempDir(t)
	dev := testutil.LoopDevice(t, dir, 64)
	mounted := testutil.LoopDisk(t, dir, 32, "ext4")
	unmounted := filepath.Join(dir, "empty")
	if err := os.Mkdir(unmounted, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := parse(t, fmt.Sprintf(`pools:
- name: disks
  kind: mount
  disks:
  - {device: %s, fsType: ext4}
  - {device: /dev/loop-not-there, fsType: xfs}
  - {path: %s}
  - {path: %s}
`, dev, mounted, unmounted))
	fs := Run(Config{StateDir: filepath.Join(dir, "state"), Pools: cfg, Records: true})
	expect(t, fs, "disk "+dev, "ok block device "+dev+", identity backing="+dir+"/dev")
	expect(t, fs, "disk /dev/loop-not-there", "warn missing")
	expect(t, fs, "disk "+mounted, "ok ext4 mounted at "+mounted)
	expect(t, fs, "disk "+unmounted, "warn is not a mount point")
	expect(t, fs, "pool disks", "ok 2 of 4 disks present")
	if Failed(fs) {
		t.Errorf("nothing failed, yet: %v", fs)
	}
	testutil.UnplugDisk(t, mounted)
	none := parse(t, fmt.Sprintf("pools:\n- {name: none, kind: mount, disks: [{path: %s}]}\n", mounted))
	fs = Run(Config{StateDir: filepath.Join(dir, "state"), Pools: none})
	expect(t, fs, "pool none", "fail none of its 1 disks is present")
	servesAlike(t, filepath.Join(dir, "state"), none, fs)
}

// A device pool that erases by discard, on a device that cannot discard,
// is told of before a delete fails on it.
func TestDiscardOnADeviceWithout(t *testing.T) {
	testutil.RequireRoot(t)
	dir := testutil.ShortTempDir(t)
	yes := testutil.LoopDevice(t, dir, 16)
	no := noDiscardDevice(t, dir)
	cfg := parse(t, fmt.Sprintf("pools:\n- name: d\n  kind: mount\n  erase: discard\n  disks:\n  - {device: %s, fsType: ext4}\n  - {device: %s, fsType: ext4}\n", yes, no))
	fs := Run(Config{StateDir: filepath.Join(dir, "state"), Pools: cfg})
	expect(t, fs, "disk "+yes, "ok block device")
	expect(t, fs, "disk "+no, "ok block device", "warn does not support discard")
}

func TestKernelVersion(t *testing.T) {
	for release, want := range map[string][2]int{
		"3.10.0-1160.el7.x86_64": {3, 10}, "5.4.0-150-generic": {5, 4}, "6.18.44-fc-v1045": {6, 18}, "4.19": {4, 19}, "5.10+": {5, 10},
	} {
		if maj, min, ok := kernelVersion(release); !ok || maj != want[0] || min != want[1] {
			t.Errorf("kernelVersion(%q) = %d.%d %v, want %d.%d", release, maj, min, ok, want[0], want[1])
		}
	}
	for _, bad := range []string{"", "6", "x.y"} {
		if _, _, ok := kernelVersion(bad); ok {
			t.Errorf("kernelVersion(%q) ok", bad)
		}
	}
}

// A pool that only accounts capacity on the filesystem of the Mesos
// agent's work dir (or kubelet's) is warned of, with how to enforce it.
func TestSharedFilesystemWarning(t *testing.T) {
	testutil.RequireRoot(t)
	dir := testutil.ShortTempDir(t) // on the host's root filesystem: no prjquota
	work := filepath.Join(dir, "mesos")
	if err := os.Mkdir(work, 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := parse(t, fmt.Sprintf("pools:\n- {name: r, kind: root, path: %s/root}\n", dir))
	fs := Run(Config{StateDir: filepath.Join(dir, "state"), Pools: cfg, WorkDir: work})
	found := false
	for _, f := range about(fs, "pool r") {
		if f.Level == Warn && strings.Contains(f.Message, "shares its filesystem with the Mesos agent's work dir") &&
			strings.Contains(f.Message, "15% (at least 2Gi)") && strings.Contains(f.Message, "prjquota") {
			found = true
		}
	}
	if !found {
		t.Errorf("no warning of a ROOT pool sharing the work dir's filesystem without enforcement: %v", about(fs, "pool r"))
	}
	other := testutil.LoopDisk(t, dir, 32, "ext4") // a disk of its own: no warning
	cfg = parse(t, fmt.Sprintf("pools:\n- {name: p, kind: path, path: %s}\n", other))
	for _, f := range about(Run(Config{StateDir: filepath.Join(dir, "state2"), Pools: cfg, WorkDir: work}), "pool p") {
		if strings.Contains(f.Message, "shares its filesystem") {
			t.Errorf("a pool on a disk of its own is warned of: %v", f)
		}
	}
}
