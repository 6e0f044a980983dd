// Package devices tests MOUNT pools of block devices against the real
// binary: formatting only blank devices, raw block publishing, erasing on
// delete, and disks keeping their identity when their /dev names change.
package devices

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/localdisk-csi/localdisk/test/testutil"
)

func TestMain(m *testing.M) { testutil.MainWithBuilds(m) }

type env struct {
	t    *testing.T
	dir  string
	devs []string
	p    *testutil.Plugin
}

// newEnv starts the plugin on a MOUNT pool of the given devices, with
// args added to its command line.
func newEnv(t *testing.T, dir string, devs []string, fsType, erase string, args ...string) *env {
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "pools:\n- name: devs\n  kind: mount\n  erase: %s\n  disks:\n", erase)
	for _, d := range devs {
		fmt.Fprintf(&cfg, "  - device: %s\n    fsType: %s\n", d, fsType)
	}
	e := startEnv(t, dir, cfg.String(), args...)
	e.devs = devs
	return e
}

// startEnv starts the plugin on the pools file cfg, with args added to its
// command line.
func startEnv(t *testing.T, dir, cfg string, args ...string) *env {
	e := &env{t: t, dir: dir}
	e.p = testutil.StartPlugin(t, testutil.BuildPlugin(t), testutil.PluginOptions{
		Endpoint: filepath.Join(dir, "csi.sock"), NodeID: "n1", StateDir: filepath.Join(dir, "state"),
		ConfigPath: testutil.WriteConfig(t, dir, cfg), Args: args,
	})
	return e
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

func capFor(block bool) *csi.VolumeCapability {
	c := &csi.VolumeCapability{AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER}}
	if block {
		c.AccessType = &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}}
	} else {
		c.AccessType = &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}}
	}
	return c
}

func (e *env) create(name string, block bool) (string, error) {
	r, err := e.p.Controller().CreateVolume(ctx(e.t), &csi.CreateVolumeRequest{Name: name,
		VolumeCapabilities: []*csi.VolumeCapability{capFor(block)}})
	return r.GetVolume().GetVolumeId(), err
}

// publish stages and publishes; it returns the target.
func (e *env) publish(id string, block bool) (string, error) {
	staging := filepath.Join(e.dir, "mounts", id, "staging")
	target := filepath.Join(e.dir, "mounts", id, "target")
	os.MkdirAll(staging, 0o750)
	n := e.p.Node()
	if _, err := n.NodeStageVolume(ctx(e.t), &csi.NodeStageVolumeRequest{VolumeId: id, StagingTargetPath: staging, VolumeCapability: capFor(block)}); err != nil {
		return "", err
	}
	_, err := n.NodePublishVolume(ctx(e.t), &csi.NodePublishVolumeRequest{VolumeId: id, StagingTargetPath: staging, TargetPath: target, VolumeCapability: capFor(block)})
	return target, err
}

func (e *env) unpublish(id string) {
	e.t.Helper()
	base := filepath.Join(e.dir, "mounts", id)
	n := e.p.Node()
	if _, err := n.NodeUnpublishVolume(ctx(e.t), &csi.NodeUnpublishVolumeRequest{VolumeId: id, TargetPath: filepath.Join(base, "target")}); err != nil {
		e.t.Fatal(err)
	}
	if _, err := n.NodeUnstageVolume(ctx(e.t), &csi.NodeUnstageVolumeRequest{VolumeId: id, StagingTargetPath: filepath.Join(base, "staging")}); err != nil {
		e.t.Fatal(err)
	}
}

// volumeWithMarker creates a volume, writes marker 4096 times into a file
// on it through a publish, and unpublishes it; it returns the volume ID.
func (e *env) volumeWithMarker(name string, marker []byte) string {
	e.t.Helper()
	id, err := e.create(name, false)
	must(e.t, err)
	target, err := e.publish(id, false)
	must(e.t, err)
	must(e.t, os.WriteFile(filepath.Join(target, "s"), bytes.Repeat(marker, 4096), 0o644))
	e.unpublish(id)
	return id
}

// eventually polls ok every 100 ms until it returns nil, failing the test
// with its last error after 30 s.
func (e *env) eventually(what string, ok func() error) {
	e.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := ok()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("%s: %v\n%s", what, err, e.p.LogPath)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (e *env) delete(id string) error {
	_, err := e.p.Controller().DeleteVolume(ctx(e.t), &csi.DeleteVolumeRequest{VolumeId: id})
	return err
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func sh(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return string(out)
}

// TestDevice_NeverFormatsExistingFilesystem: a device with a filesystem and
// a canary is never formatted: mounted as is when its type matches (data
// kept at creation), refused when it does not.
func TestDevice_NeverFormatsExistingFilesystem(t *testing.T) {
	testutil.RequireRoot(t)
	dir := testutil.ShortTempDir(t)
	dev := testutil.LoopDevice(t, dir, 64)
	sh(t, "mkfs.ext4", "-q", "-F", dev)
	mnt := filepath.Join(dir, "m")
	os.Mkdir(mnt, 0o755)
	sh(t, "mount", dev, mnt)
	os.WriteFile(filepath.Join(mnt, "canary"), []byte("tweet"), 0o644)
	sh(t, "umount", mnt)
	uuid := sh(t, "blkid", "-p", "-s", "UUID", "-o", "value", dev)

	e := newEnv(t, dir, []string{dev}, "xfs", "none") // another fs type: must refuse
	id, err := e.create("db", false)
	must(t, err)
	if _, err := e.publish(id, false); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("stage of an ext4 device in an xfs pool: %v, want FailedPrecondition", err)
	}
	if got := sh(t, "blkid", "-p", "-s", "UUID", "-o", "value", dev); got != uuid {
		t.Fatalf("the device was formatted: UUID %q -> %q", uuid, got)
	}
	e.p.Stop()

	e = newEnv(t, dir, []string{dev}, "ext4", "none")
	target, err := e.publish(id, false)
	must(t, err)
	if data, err := os.ReadFile(filepath.Join(target, "canary")); err != nil || string(data) != "tweet" {
		t.Errorf("canary: %q %v", data, err)
	}
	e.unpublish(id)
	must(t, e.delete(id))
	// erase=none removes the filesystem: the next volume starts blank
	// (blkid exits 2 when it finds nothing).
	if out, err := exec.Command("blkid", "-p", dev).CombinedOutput(); err == nil {
		t.Errorf("signatures left after delete: %s", out)
	}
}

// TestDevice_EraseZeroLeavesNothing: with erase=zero no byte of the old data
// is left on the device after delete, and the disk serves again.
func TestDevice_EraseZeroLeavesNothing(t *testing.T) {
	testutil.RequireRoot(t)
	dir := testutil.ShortTempDir(t)
	dev := testutil.LoopDevice(t, dir, 64)
	e := newEnv(t, dir, []string{dev}, "ext4", "zero")
	marker := []byte("LOCALDISK-SECRET-MARKER-7f3a")
	id := e.volumeWithMarker("secret", marker)
	before, _ := os.ReadFile(dev)
	if !bytes.Contains(before, marker) {
		t.Fatal("marker not found on the device before delete: the test cannot see the data")
	}
	must(t, e.delete(id))
	after, err := os.ReadFile(dev)
	must(t, err)
	if bytes.Contains(after, marker) {
		t.Error("old data found on the device after erase=zero")
	}
	if n := bytes.Count(after, []byte{0}); n != len(after) {
		t.Errorf("%d of %d bytes are not zero", len(after)-n, len(after))
	}
	if _, err := e.create("next", false); err != nil {
		t.Errorf("disk not handed out again after its erase: %v", err)
	}
}
