package devices

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"

	"github.com/localdisk-csi/localdisk/driver/failpoint"
	"github.com/localdisk-csi/localdisk/test/testutil"
)

// TestBlock_ReadOnlyAndCrashAtPublish: a read-only block publish refuses
// writes; a crash right after a block publish mounted the device node
// converges on the CO's retry, with exactly one mount at the target.
func TestBlock_ReadOnlyAndCrashAtPublish(t *testing.T) {
	testutil.RequireRoot(t)
	dir := testutil.ShortTempDir(t)
	dev := testutil.LoopDevice(t, dir, 64)
	cfg := "pools:\n- name: devs\n  kind: mount\n  disks:\n  - device: " + dev + "\n    fsType: ext4\n"
	bin := testutil.BuildPluginWith(t, testutil.BuildOptions{Tags: []string{"failpoints"}})
	p := testutil.StartPlugin(t, bin, testutil.PluginOptions{
		Endpoint: filepath.Join(dir, "csi.sock"), NodeID: "n1", StateDir: filepath.Join(dir, "state"),
		ConfigPath: testutil.WriteConfig(t, dir, cfg),
	})
	e := &env{t: t, dir: dir, devs: []string{dev}, p: p}
	id, err := e.create("raw", true)
	must(t, err)
	staging := filepath.Join(dir, "mounts", id, "staging")
	must(t, os.MkdirAll(staging, 0o750))
	_, err = p.Node().NodeStageVolume(ctx(t), &csi.NodeStageVolumeRequest{VolumeId: id, StagingTargetPath: staging, VolumeCapability: capFor(true)})
	must(t, err)
	publish := func(target string, ro bool) error {
		_, err := p.Node().NodePublishVolume(ctx(t), &csi.NodePublishVolumeRequest{VolumeId: id,
			StagingTargetPath: staging, TargetPath: target, VolumeCapability: capFor(true), Readonly: ro})
		return err
	}
	ro := filepath.Join(dir, "mounts", id, "ro")
	must(t, publish(ro, true))
	if f, err := os.OpenFile(ro, os.O_WRONLY, 0); err == nil {
		_, err = f.WriteAt([]byte("no"), 0)
		f.Close()
		if !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.EROFS) && !errors.Is(err, unix.EACCES) {
			t.Errorf("write through a read-only block publish: %v, want it refused", err)
		}
	}
	unpublish := func(target string) {
		_, err := p.Node().NodeUnpublishVolume(ctx(t), &csi.NodeUnpublishVolumeRequest{VolumeId: id, TargetPath: target})
		must(t, err)
	}
	unpublish(ro)
	if f, err := os.OpenFile(dev, os.O_WRONLY, 0); err != nil {
		t.Errorf("open the device: %v", err)
	} else {
		if _, err := f.WriteAt([]byte("ok"), 0); err != nil {
			t.Errorf("the device stays read-only after its read-only publish is gone: %v", err)
		}
		f.Close()
	}

	target := filepath.Join(dir, "mounts", id, "target")
	p.Stop()
	p.SetEnv(failpoint.Env + "=" + failpoint.PublishMounted)
	p.Restart()
	if err := publish(target, false); err == nil {
		t.Fatal("publish survived its crash point")
	}
	p.WaitCrash()
	p.SetEnv()
	p.Restart()
	must(t, publish(target, false))
	if n := len(testutil.Mounts(t, target)); n != 1 {
		t.Errorf("%d mounts at the target after the retried publish, want 1", n)
	}
	unpublish(target)
	_, err = p.Node().NodeUnstageVolume(ctx(t), &csi.NodeUnstageVolumeRequest{VolumeId: id, StagingTargetPath: staging})
	must(t, err)
	must(t, e.delete(id))
}
