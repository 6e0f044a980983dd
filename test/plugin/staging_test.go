package plugin

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	mount "k8s.io/mount-utils"

	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/test/testutil"
)

// TestStaging_KubeletCanUnstage: once a volume is unpublished, kubelet
// unmounts its staging path only when GetDeviceMountRefs finds no other
// mount of the same filesystem root (HasMountRefs in kubelet's volume
// util). That check, with kubelet's own k8s.io/mount-utils, holds for every
// kind of volume, a MOUNT disk given by path included: a second bind of the
// disk's mount root at the staging path was such a reference (the
// operator's mount at the disk's path), and its PVC could never be deleted.
func TestStaging_KubeletCanUnstage(t *testing.T) {
	e := testutil.NewEnv(t, testutil.EnvOptions{DeviceDisks: 1})
	m := mount.New("")
	for _, pool := range []string{testutil.RootPool, testutil.PathPool, testutil.MountPool, testutil.DevicePool} {
		t.Run(pool, func(t *testing.T) {
			e := e.For(t)
			size := int64(4 * testutil.MiB)
			if pool == testutil.MountPool || pool == testutil.DevicePool {
				size = 0 // a whole disk
			}
			id := e.MustCreate("refs-"+pool, size, map[string]string{"pool": pool}).GetVolumeId()
			staging, target := e.Paths(id)
			e.Must(e.Stage(id, staging), "stage")
			e.Must(e.Publish(id, staging, target, false), "publish")
			e.Must(os.WriteFile(filepath.Join(target, "f"), []byte(pool), 0o600), "write")
			e.Must(e.Unpublish(id, target), "unpublish")
			refs, err := m.GetMountRefs(staging)
			if err != nil {
				t.Fatalf("GetMountRefs(%s): %v", staging, err)
			}
			if len(refs) > 0 {
				t.Errorf("staging path %s has references outside it %v: kubelet would never unstage it", staging, refs)
			}
			e.Must(e.Unstage(id, staging), "unstage")
			e.Must(e.Delete(id), "delete")
		})
	}
	e.CheckConverged()
}

// TestStaging_WholeDiskStagedIsInUse: a MOUNT disk given by path is staged
// with its mark, not a mount of its own root, yet DeleteVolume still knows
// it is staged (FAILED_PRECONDITION, the spec's "volume in use") and wipes
// nothing, also after a plugin restart; publish shows the disk's data, and
// once unstaged the delete wipes the disk and removes the mark.
func TestStaging_WholeDiskStagedIsInUse(t *testing.T) {
	e, id, disk, staging, target := stagedDisk(t, "staged-disk")
	mark := filepath.Join(e.StateDir, "staged", layout.DiskOf(id)) // named by the disk
	if got := testutil.Mounts(t, filepath.Dir(staging)); len(got) != 1 || got[0] != staging {
		t.Errorf("mounts after stage: %q, want only the staging path", got)
	}
	for _, when := range []string{"staged", "staged, after a restart"} {
		if err := e.Delete(id); status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "is staged at "+staging) {
			t.Errorf("%s: DeleteVolume: %v, want FailedPrecondition, staged at %s", when, err, staging)
		}
		if data, err := os.ReadFile(filepath.Join(disk, "precious")); err != nil || string(data) != "keep" {
			t.Fatalf("%s: DATA LOSS after a refused delete: %q %v", when, data, err)
		}
		e.P.Restart()
	}
	e.Must(e.Stage(id, staging), "stage again (a replay)")
	e.Must(e.Publish(id, staging, target, false), "publish")
	if data, err := os.ReadFile(filepath.Join(target, "precious")); err != nil || string(data) != "keep" {
		t.Errorf("the target does not show the disk: %q %v", data, err)
	}
	if err := e.Delete(id); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("DeleteVolume while published: %v, want FailedPrecondition", err)
	}
	e.Must(e.Unpublish(id, target), "unpublish")
	e.Must(e.Unstage(id, staging), "unstage")
	if _, err := os.Stat(mark); err != nil {
		t.Errorf("the mark goes with the volume, not the staging: %v", err)
	}
	e.Must(e.Delete(id), "delete once unstaged")
	if ents, _ := os.ReadDir(disk); len(ents) > 1 || len(ents) == 1 && ents[0].Name() != "lost+found" {
		t.Errorf("the disk was not wiped: %v", ents)
	}
	if _, err := os.Stat(mark); !os.IsNotExist(err) {
		t.Errorf("staging mark %s left after the delete: %v", mark, err)
	}
	e.CheckConverged()
}

// TestStaging_WholeDiskStagedBeforeTheMark: a disk staged by an older
// version (its root bound at the staging path) stays usable: a publish
// accepts it (single-writer, so the mount table decides), DeleteVolume
// refuses it, and a replayed stage replaces it with the mark, keeping the
// publish, so that kubelet can unstage it at last.
func TestStaging_WholeDiskStagedBeforeTheMark(t *testing.T) {
	e := testutil.NewEnv(t, testutil.EnvOptions{})
	id := e.MustCreate("old-staging", 0, map[string]string{"pool": testutil.MountPool}).GetVolumeId()
	disk := e.DiskOf(id)
	staging, target := e.Paths(id)
	if out, err := exec.Command("mount", "--bind", disk, staging).CombinedOutput(); err != nil {
		t.Fatalf("bind the disk as an old version staged it: %v %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-R", staging).Run() })
	if err := e.Delete(id); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("DeleteVolume while staged the old way: %v, want FailedPrecondition", err)
	}
	ctx, cancel := e.Ctx()
	defer cancel()
	_, err := e.P.Node().NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: id, StagingTargetPath: staging,
		TargetPath: target, VolumeCapability: testutil.MountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER)})
	e.Must(err, "publish (single writer) from the old staging")
	e.Must(os.WriteFile(filepath.Join(target, "f"), []byte("x"), 0o600), "write")
	e.Must(e.Stage(id, staging), "stage replayed over the old staging")
	if refs, err := mount.New("").GetMountRefs(staging); err != nil || len(refs) > 0 {
		t.Errorf("after the replayed stage, staging path references %v %v: kubelet would never unstage it", refs, err)
	}
	if data, err := os.ReadFile(filepath.Join(target, "f")); err != nil || string(data) != "x" {
		t.Errorf("the publish lost the disk when its old staging was replaced: %q %v", data, err)
	}
	if err := e.Delete(id); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("DeleteVolume while published: %v, want FailedPrecondition", err)
	}
	e.Must(e.Unpublish(id, target), "unpublish")
	e.Must(e.Unstage(id, staging), "unstage")
	for _, m := range testutil.Mounts(t, e.CODir) {
		if strings.HasPrefix(m, filepath.Dir(staging)) {
			t.Errorf("left mounted: %s", m)
		}
	}
	e.Must(e.Delete(id), "delete")
	e.CheckConverged()
}

// TestStaging_RemovedMarkStillUnstages: a mark removed from the state dir
// while its disk is staged (the kernel then shows its root as
// "<mark>//deleted") still protects the disk from DeleteVolume, and the
// staging can still be unstaged.
func TestStaging_RemovedMarkStillUnstages(t *testing.T) {
	e, id, disk, staging, _ := stagedDisk(t, "removed-mark")
	e.Must(os.Remove(filepath.Join(e.StateDir, "staged", layout.DiskOf(id))), "remove the mark")
	if err := e.Delete(id); status.Code(err) != codes.FailedPrecondition {
		t.Errorf("DeleteVolume with its mark removed while staged: %v, want FailedPrecondition", err)
	}
	if data, err := os.ReadFile(filepath.Join(disk, "precious")); err != nil || string(data) != "keep" {
		t.Fatalf("DATA LOSS: %q %v", data, err)
	}
	e.Must(e.Unstage(id, staging), "unstage")
	if m := testutil.Mounts(t, filepath.Dir(staging)); len(m) > 0 {
		t.Errorf("left mounted: %q", m)
	}
	e.Must(e.Delete(id), "delete")
	e.CheckConverged()
}

// stagedDisk starts a plugin, claims a MOUNT disk given by path for name,
// writes "precious" on it and stages it.
func stagedDisk(t *testing.T, name string) (e *testutil.Env, id, disk, staging, target string) {
	e = testutil.NewEnv(t, testutil.EnvOptions{})
	id = e.MustCreate(name, 0, map[string]string{"pool": testutil.MountPool}).GetVolumeId()
	disk = e.DiskOf(id)
	e.Must(os.WriteFile(filepath.Join(disk, "precious"), []byte("keep"), 0o600), "write on the disk")
	staging, target = e.Paths(id)
	e.Must(e.Stage(id, staging), "stage")
	return e, id, disk, staging, target
}
