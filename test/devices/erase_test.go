package devices

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/localdisk-csi/localdisk/test/testutil"
)

// TestDevice_FailedEraseIsRetried: an erase that fails leaves the disk
// claimed (never handed out with old data); once the cause is gone the
// health watch erases it and hands it out again, with no DeleteVolume
// retry (a CO that got OK from a delete whose erase went on in the
// background never asks again).
func TestDevice_FailedEraseIsRetried(t *testing.T) {
	testutil.RequireRoot(t)
	dir := testutil.ShortTempDir(t)
	dev := testutil.LoopDevice(t, dir, 64)
	e := newEnv(t, dir, []string{dev}, "ext4", "zero", "--health-interval=200ms")
	marker := []byte("LOCALDISK-RETRY-MARKER-91c2")
	id := e.volumeWithMarker("secret", marker)

	// An exclusive open makes the plugin's own (O_EXCL) open of the device
	// fail with EBUSY, as a device in use by someone else would.
	fd, err := unix.Open(dev, unix.O_RDONLY|unix.O_EXCL|unix.O_CLOEXEC, 0)
	must(t, err)
	held := true
	release := func() {
		if held {
			held = false
			unix.Close(fd)
		}
	}
	defer release()
	if err := e.delete(id); err == nil {
		t.Fatal("DeleteVolume succeeded although the device could not be opened for its erase")
	}
	if _, err := e.create("while-erasing", false); err == nil {
		t.Fatal("the disk was handed out again before its erase")
	}
	release()

	// Nothing calls DeleteVolume again: the watch must finish the erase.
	e.eventually("the disk erased and handed out again by the health watch", func() error {
		_, err := e.create("next", false)
		return err
	})
	data, err := os.ReadFile(dev)
	must(t, err)
	if bytes.Contains(data, marker) {
		t.Error("old data found on the device handed out again")
	}
}

// TestDevice_PreExistingDiskErased: a device disk listed as a pre-existing
// volume (listUnclaimed, as under Mesos) is erased as configured when
// deleted (Mesos DESTROY_DISK): not only its signatures but every byte, not
// listed while it is erased, and listed again afterwards. CreateVolume
// never hands such a disk out, so one in use is never given to another.
func TestDevice_PreExistingDiskErased(t *testing.T) {
	testutil.RequireRoot(t)
	dir := testutil.ShortTempDir(t)
	dev := testutil.LoopDevice(t, dir, 64)
	marker := []byte("LOCALDISK-PREEXISTING-MARKER-5d0e")
	f, err := os.OpenFile(dev, os.O_WRONLY, 0)
	must(t, err)
	_, err = f.WriteAt(bytes.Repeat(marker, 4096), 8<<20)
	must(t, err)
	must(t, f.Close())
	cfg := fmt.Sprintf("pools:\n- name: devs\n  kind: mount\n  listUnclaimed: true\n  erase: zero\n  disks:\n  - device: %s\n    fsType: ext4\n", dev)
	e := startEnv(t, dir, cfg, "--health-interval=200ms")
	listed := func() []string {
		t.Helper()
		r, err := e.p.Controller().ListVolumes(ctx(t), &csi.ListVolumesRequest{})
		must(t, err)
		var ids []string
		for _, en := range r.GetEntries() {
			ids = append(ids, en.GetVolume().GetVolumeId())
		}
		return ids
	}
	ids := listed()
	if len(ids) != 1 {
		t.Fatalf("ListVolumes = %v, want the one pre-existing disk", ids)
	}
	if _, err := e.create("new", false); status.Code(err) != codes.OutOfRange {
		t.Errorf("CreateVolume in a pool of pre-existing disks: %v, want OutOfRange", err)
	}

	// First attempt: the device is busy, so the erase fails; the disk is
	// held (not listed) until the health watch erases it.
	fd, err := unix.Open(dev, unix.O_RDONLY|unix.O_EXCL|unix.O_CLOEXEC, 0)
	must(t, err)
	if err := e.delete(ids[0]); err == nil {
		unix.Close(fd)
		t.Fatal("DeleteVolume succeeded although the device could not be opened for its erase")
	}
	if l := listed(); len(l) != 0 {
		t.Errorf("ListVolumes = %v while the disk waits for its erase, want nothing", l)
	}
	// The disk stays a volume for the CO (it is listed again once erased):
	// its health says why it is not there now, in the list too.
	h, err := e.p.Controller().ControllerGetVolumeHealth(ctx(t), &csi.ControllerGetVolumeHealthRequest{VolumeId: ids[0]})
	if s := h.GetVolumeHealth().GetHealthStatuses(); err != nil || len(s) != 1 ||
		s[0].GetStatus() != csi.VolumeHealthErrorType_INACCESSIBLE || s[0].GetReason() != "ErasePending" {
		t.Errorf("health of a pre-existing disk waiting for its erase: %v, %v; want INACCESSIBLE/ErasePending", h, err)
	}
	hl, err := e.p.Controller().ControllerListVolumeHealth(ctx(t), &csi.ControllerListVolumeHealthRequest{})
	if err != nil || len(hl.GetEntries()) != 1 || hl.GetEntries()[0].GetVolumeId() != ids[0] {
		t.Errorf("ControllerListVolumeHealth while the disk waits for its erase: %v, %v", hl, err)
	}
	unix.Close(fd)
	e.eventually("the disk erased and listed again", func() error {
		if len(listed()) == 0 {
			return errors.New("not listed")
		}
		return nil
	})
	data, err := os.ReadFile(dev)
	must(t, err)
	if n := bytes.Count(data, []byte{0}); n != len(data) {
		t.Errorf("%d of %d bytes are not zero after deleting the pre-existing disk", len(data)-n, len(data))
	}
	if l := listed(); len(l) != 1 || l[0] != ids[0] {
		t.Errorf("ListVolumes = %v after the erase, want %v", l, ids)
	}
	if err := e.delete(ids[0]); err != nil {
		t.Errorf("DeleteVolume of the erased disk again: %v", err)
	}
}

// TestDisk_WipeOutlivingTheDeadline: a disk given by path whose wipe does
// not finish within the CO's deadline (here it cannot: an immutable file)
// answers OK and is wiped in the background, like a device's erase, so the
// CO does not retry a delete whose volume ID the disk's next volume gets.
// Until the wipe is done the disk is not handed out; once the file can go,
// the health watch finishes and the disk serves again, empty.
func TestDisk_WipeOutlivingTheDeadline(t *testing.T) {
	testutil.RequireRoot(t)
	dir := testutil.ShortTempDir(t)
	disk := testutil.LoopDisk(t, dir, 32, "ext4")
	cfg := fmt.Sprintf("pools:\n- name: disks\n  kind: mount\n  disks:\n  - path: %s\n", disk)
	e := startEnv(t, dir, cfg, "--health-interval=200ms")
	id, err := e.create("old", false)
	must(t, err)
	stuck := filepath.Join(disk, "stuck")
	must(t, os.WriteFile(stuck, []byte("old data"), 0o644))
	sh(t, "chattr", "+i", stuck)
	t.Cleanup(func() { exec.Command("chattr", "-i", stuck).Run() })

	// A deadline under the plugin's 5 s margin leaves no time to wait.
	short, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	if _, err := e.p.Controller().DeleteVolume(short, &csi.DeleteVolumeRequest{VolumeId: id}); err != nil {
		t.Fatalf("DeleteVolume with a short deadline: %v, want OK with the wipe going on", err)
	}
	if _, err := e.create("new", false); err == nil {
		t.Fatal("the disk was handed out again before its wipe")
	}
	// Deleted for the CO, even while its wipe goes on (csi.proto: "Volume
	// does not exist | 5 NOT_FOUND").
	_, err = e.p.Controller().ControllerGetVolumeHealth(context.Background(), &csi.ControllerGetVolumeHealthRequest{VolumeId: id})
	if status.Code(err) != codes.NotFound {
		t.Errorf("health of a deleted volume whose wipe is pending: %v, want NotFound", err)
	}
	sh(t, "chattr", "-i", stuck)
	e.eventually("the disk wiped and handed out again", func() error {
		_, err := e.create("new", false)
		return err
	})
	if _, err := os.Stat(stuck); !os.IsNotExist(err) {
		t.Errorf("the old volume's file survived the wipe: %v", err)
	}
}

// TestDisk_RetriedWipeNeverReachesAnotherFilesystem: a wipe that failed and
// is retried in the background checks the disk again: another filesystem
// mounted in the disk's place meanwhile is refused, never wiped.
func TestDisk_RetriedWipeNeverReachesAnotherFilesystem(t *testing.T) {
	testutil.RequireRoot(t)
	dir := testutil.ShortTempDir(t)
	disk := testutil.LoopDisk(t, dir, 32, "ext4")
	cfg := fmt.Sprintf("pools:\n- name: disks\n  kind: mount\n  disks:\n  - path: %s\n", disk)
	e := startEnv(t, dir, cfg, "--health-interval=200ms")
	id, err := e.create("old", false)
	must(t, err)
	stuck := filepath.Join(disk, "stuck")
	must(t, os.WriteFile(stuck, []byte("old data"), 0o644))
	sh(t, "chattr", "+i", stuck)
	short, cancel := context.WithTimeout(context.Background(), 4*time.Second)
	defer cancel()
	if _, err := e.p.Controller().DeleteVolume(short, &csi.DeleteVolumeRequest{VolumeId: id}); err != nil {
		t.Fatalf("DeleteVolume with a short deadline: %v, want OK with the wipe going on", err)
	}

	// The disk's filesystem goes; another one is mounted in its place.
	e.eventually("unmounting the disk between two retries of its wipe", func() error {
		if out, err := exec.Command("umount", disk).CombinedOutput(); err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
	impostor := testutil.LoopDevice(t, dir, 32)
	sh(t, "mkfs.ext4", "-q", "-F", impostor)
	sh(t, "mount", impostor, disk)
	t.Cleanup(func() { exec.Command("umount", disk).Run() })
	precious := filepath.Join(disk, "precious")
	must(t, os.WriteFile(precious, []byte("not yours"), 0o644))

	e.eventually("the retried wipe refusing the other filesystem", func() error {
		log, _ := os.ReadFile(e.p.LogPath)
		if !strings.Contains(string(log), "holds another filesystem") {
			return errors.New("not yet in the log")
		}
		return nil
	})
	if b, err := os.ReadFile(precious); err != nil || string(b) != "not yours" {
		t.Errorf("the other filesystem was wiped: %q, %v", b, err)
	}
}
