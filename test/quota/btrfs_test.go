// Package quota tests enforced capacities against the real binary: btrfs
// subvolume qgroups on the host, and XFS/ext4 project quotas inside
// user-mode Linux (see uml_test.go).
package quota

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"

	"github.com/localdisk-csi/localdisk/test/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

const mib = 1 << 20

var rwo = &csi.VolumeCapability{
	AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
	AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER},
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

// quotaEnv is a plugin serving one PATH pool with quota: required.
type quotaEnv struct {
	t   *testing.T
	dir string
	p   *testutil.Plugin
}

// startQuotaPool serves a PATH pool "q" with quota: required at root, each
// volume limited to volumeInodes inodes (0: no limit).
func startQuotaPool(t *testing.T, dir, root string, volumeInodes int64) *quotaEnv {
	cfg := fmt.Sprintf("pools:\n- name: q\n  kind: path\n  path: %s\n  capacity: 64Mi\n  quota: required\n", root)
	if volumeInodes > 0 {
		cfg += fmt.Sprintf("  volumeInodes: %d\n", volumeInodes)
	}
	p := testutil.StartPlugin(t, testutil.BuildPlugin(t), testutil.PluginOptions{
		Endpoint: filepath.Join(dir, "csi.sock"), NodeID: "n", StateDir: filepath.Join(dir, "state"),
		ConfigPath: testutil.WriteConfig(t, dir, cfg),
	})
	return &quotaEnv{t: t, dir: dir, p: p}
}

func (e *quotaEnv) must(err error) {
	e.t.Helper()
	if err != nil {
		e.t.Fatal(err)
	}
}

// volume creates and publishes a volume; it returns its ID and target.
func (e *quotaEnv) volume(name string, size int64) (string, string) {
	r, err := e.p.Controller().CreateVolume(ctx(e.t), &csi.CreateVolumeRequest{Name: name,
		VolumeCapabilities: []*csi.VolumeCapability{rwo}, CapacityRange: &csi.CapacityRange{RequiredBytes: size}})
	e.must(err)
	id := r.GetVolume().GetVolumeId()
	staging := filepath.Join(e.dir, "mounts", id, "staging")
	target := filepath.Join(e.dir, "mounts", id, "target")
	e.must(os.MkdirAll(staging, 0o750))
	_, err = e.p.Node().NodeStageVolume(ctx(e.t), &csi.NodeStageVolumeRequest{VolumeId: id, StagingTargetPath: staging, VolumeCapability: rwo})
	e.must(err)
	_, err = e.p.Node().NodePublishVolume(ctx(e.t), &csi.NodePublishVolumeRequest{VolumeId: id, StagingTargetPath: staging, TargetPath: target, VolumeCapability: rwo})
	e.must(err)
	return id, target
}

func (e *quotaEnv) destroy(id string) {
	base := filepath.Join(e.dir, "mounts", id)
	_, err := e.p.Node().NodeUnpublishVolume(ctx(e.t), &csi.NodeUnpublishVolumeRequest{VolumeId: id, TargetPath: filepath.Join(base, "target")})
	e.must(err)
	_, err = e.p.Node().NodeUnstageVolume(ctx(e.t), &csi.NodeUnstageVolumeRequest{VolumeId: id, StagingTargetPath: filepath.Join(base, "staging")})
	e.must(err)
	_, err = e.p.Controller().DeleteVolume(ctx(e.t), &csi.DeleteVolumeRequest{VolumeId: id})
	e.must(err)
}

// fill writes up to n bytes of data (synced) to a new file, as a container
// would: on a thread without CAP_SYS_RESOURCE, which ext4's quota code lets
// exceed hard limits. It returns what was written and the error that
// stopped it.
func fill(path string, n int64) (int64, error) {
	type result struct {
		n   int64
		err error
	}
	done := make(chan result, 1)
	go func() {
		// Capabilities are per thread. The thread gets its capability back
		// before it is unlocked; it must not end with the goroutine: the
		// plugin's parent-death signal (Pdeathsig) follows the thread that
		// started it, which may be this one, so an ending thread kills it.
		runtime.LockOSThread()
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var caps [2]unix.CapUserData
		err := unix.Capget(&hdr, &caps[0])
		if err == nil {
			caps[0].Effective &^= 1 << unix.CAP_SYS_RESOURCE
			err = unix.Capset(&hdr, &caps[0])
		}
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{0, fmt.Errorf("drop CAP_SYS_RESOURCE: %w", err)}
			return
		}
		n, werr := write(path, n)
		caps[0].Effective |= 1 << unix.CAP_SYS_RESOURCE
		if unix.Capset(&hdr, &caps[0]) == nil {
			runtime.UnlockOSThread() // else the thread ends locked, with the goroutine
		}
		done <- result{n, werr}
	}()
	r := <-done
	return r.n, r.err
}

func write(path string, n int64) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	buf := make([]byte, 256<<10)
	for i := range buf {
		buf[i] = byte(i)
	}
	var done int64
	for done < n {
		w, err := f.Write(buf[:min(int64(len(buf)), n-done)])
		done += int64(w)
		if err == nil {
			err = f.Sync()
		}
		if err != nil {
			return done, err
		}
	}
	return done, f.Sync()
}

func exceeded(err error) bool {
	return errors.Is(err, syscall.EDQUOT) || errors.Is(err, syscall.ENOSPC)
}

// checkEnforced runs the enforcement scenario on a quota pool: a write past
// a volume's capacity fails; the other volume can still use all of its own;
// stats report the quota; expansion lets the write succeed; a restart keeps
// the quota; delete frees it.
// checkEnforced runs the enforcement scenario; inodeLimit is the pool's
// volumeInodes, which the stats must report as the volume's inode total
// (0: no limit, and a filesystem that counts no inodes, btrfs, so stats
// must leave inodes out rather than report none free).
func checkEnforced(t *testing.T, e *quotaEnv, inodeLimit int64) {
	a, ta := e.volume("a", 8*mib)
	b, tb := e.volume("b", 8*mib)
	n, err := fill(filepath.Join(ta, "big"), 16*mib)
	t.Logf("volume a (8 MiB): wrote %d bytes, then: %v", n, err)
	if !exceeded(err) || n > 8*mib {
		t.Fatalf("write past the capacity: %d bytes, %v; want EDQUOT (ENOSPC on XFS) by 8 MiB", n, err)
	}
	if n, err := fill(filepath.Join(tb, "mine"), 6*mib); err != nil {
		t.Errorf("volume b starved by a: wrote %d bytes: %v", n, err)
	}
	st, err := e.p.Node().NodeGetVolumeStats(ctx(t), &csi.NodeGetVolumeStatsRequest{VolumeId: a, VolumePath: ta})
	e.must(err)
	if u := st.GetUsage()[0]; u.GetTotal() != 8*mib || u.GetUsed() < 7*mib {
		t.Errorf("stats of a = %v, want total 8 MiB, used about 8 MiB", u)
	}
	var inodes *csi.VolumeUsage
	for _, u := range st.GetUsage() {
		if u.GetUnit() == csi.VolumeUsage_INODES {
			inodes = u
		}
	}
	switch {
	case inodeLimit > 0 && (inodes.GetTotal() != inodeLimit || inodes.GetUsed() < 1 || inodes.GetAvailable() > inodeLimit-inodes.GetUsed()):
		t.Errorf("inode stats of a = %v, want total %d (the volume's limit)", inodes, inodeLimit)
	case inodeLimit == 0 && inodes != nil:
		t.Errorf("inode stats of a = %v on a filesystem that counts no inodes, want none", inodes)
	}
	os.Remove(filepath.Join(ta, "big"))
	_, err = e.p.Controller().ControllerExpandVolume(ctx(t), &csi.ControllerExpandVolumeRequest{VolumeId: a,
		CapacityRange: &csi.CapacityRange{RequiredBytes: 24 * mib}})
	e.must(err)
	e.p.Stop()
	e.p.Restart()
	if n, err := fill(filepath.Join(ta, "bigger"), 16*mib); err != nil {
		t.Errorf("write after expansion to 24 MiB (and a restart): %d bytes, %v", n, err)
	}
	if n, err := fill(filepath.Join(ta, "more"), 16*mib); !exceeded(err) {
		t.Errorf("the expanded quota is not enforced after a restart: wrote %d more bytes, %v", n, err)
	}
	e.destroy(a)
	e.destroy(b)
}

func TestBtrfs_QgroupsEnforceCapacity(t *testing.T) {
	testutil.RequireRoot(t)
	dir := testutil.ShortTempDir(t)
	root := testutil.LoopDisk(t, dir, 512, "btrfs")
	e := startQuotaPool(t, dir, root, 0)
	checkEnforced(t, e, 0)
	if ents, _ := os.ReadDir(filepath.Join(root, "localdisk", "volumes")); len(ents) != 0 {
		t.Errorf("subvolumes left after delete: %v", ents)
	}
}

func execCommand(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	return string(out), err
}
