package crash

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/localdisk-csi/localdisk/test/testutil"
)

// TestCorruptRecord_RefusesToStart: a torn, empty or garbage record, or one
// that names another volume, stops the plugin at start-up with a message
// naming the file; it never serves (let alone "empty"). With the record
// restored, every volume is back.
func TestCorruptRecord_RefusesToStart(t *testing.T) {
	e := newEnv(t, "root", testutil.EnvOptions{})
	victim := e.create("victim", "path")
	other := e.create("other", "mount")
	file := filepath.Join(e.RecordsDir(), victim.id+".json")
	good, err := os.ReadFile(file)
	e.Must(err, "read the record")
	otherRecord, err := os.ReadFile(filepath.Join(e.RecordsDir(), other.id+".json"))
	e.Must(err, "read the record")
	e.unmountCanary()
	e.P.Stop()

	for _, c := range []struct{ name, content string }{
		{"truncated", string(good[:len(good)/2])},
		{"empty", ""},
		{"garbage", "\x00\xff\xfe garbage \x01"},
		{"not an object", "[1, 2, 3]"},
		{"unknown phase", strings.Replace(string(good), `"phase":"ready"`, `"phase":"limbo"`, 1)},
		{"another volume's record", string(otherRecord)},
	} {
		t.Run(c.name, func(t *testing.T) {
			e.Must(os.WriteFile(file, []byte(c.content), 0o600), "corrupt the record")
			log, err := testutil.StartPluginExpectExit(t, failpointBin(t), e.PluginOptions(nil))
			if err == nil {
				t.Errorf("the plugin exited with status 0 over a %s record", c.name)
			}
			if !strings.Contains(log, victim.id+".json") {
				t.Errorf("the plugin's refusal does not name %s.json:\n%s", victim.id, log)
			}
		})
	}
	e.Must(os.WriteFile(file, good, 0o600), "restore the record")
	e.restart()
	vols := e.CheckConverged()
	for _, v := range []*vol{e.canary, victim, other} {
		if vols[v.id] == nil {
			t.Errorf("volume %s lost", v.id)
		}
	}
	e.remountCanary()
	e.checkCanary()
}

// unmountCanary and remountCanary unpublish and unstage the canary before
// the plugin is stopped, and stage and publish it again once it is back: a
// ROOT or PATH canary has no staging mount, its staging record goes and
// comes back.
func (e *env) unmountCanary() {
	e.t.Helper()
	e.Must(e.Unpublish(e.canary.id, e.canary.target), "unpublish the canary")
	e.Must(e.Unstage(e.canary.id, e.canary.staging), "unstage the canary")
	if recorded(e.canary) {
		e.checkStaged(e.canary, false)
	}
}

func (e *env) remountCanary() {
	e.t.Helper()
	e.Must(e.Stage(e.canary.id, e.canary.staging), "stage the canary")
	e.Must(e.Publish(e.canary.id, e.canary.staging, e.canary.target, false), "publish the canary")
	if recorded(e.canary) {
		e.checkStaged(e.canary, true)
	}
}

// TestStrayTempRecords: temp files left by a crash mid-write are ignored;
// the records they would have replaced are the truth.
func TestStrayTempRecords(t *testing.T) {
	e := newEnv(t, "root", testutil.EnvOptions{})
	v := e.create("v", "path")
	e.P.Kill()
	for name, content := range map[string]string{
		".tmp-" + v.id + ".json": `{"version":1,"id":"` + v.id + `","name":"v","pool":"data","kind":"path","capacity":1,"phase":"deleting"}`,
		".tmp-torn.json":         `{"version":1,"id":"to`,
		".tmp-":                  "",
	} {
		e.Must(os.WriteFile(filepath.Join(e.RecordsDir(), name), []byte(content), 0o600), "plant "+name)
	}
	e.restart()
	vols := e.CheckConverged()
	if vols[v.id] == nil || vols[v.id].GetCapacityBytes() != 4*testutil.MiB {
		t.Errorf("volume %s after stray temp files: %v", v.id, vols[v.id])
	}
	e.checkCanary()
}

// TestRecordWithoutDirectory: a volume whose directory vanished is still
// listed and counted, cannot be staged (FAILED_PRECONDITION), is reported
// INACCESSIBLE, and can be deleted.
func TestRecordWithoutDirectory(t *testing.T) {
	for _, kind := range dirKinds {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t, "mount", testutil.EnvOptions{})
			v := e.create("v", kind)
			e.P.Stop()
			e.Must(os.RemoveAll(e.dataDir(v)), "remove the volume's directory")
			e.restart()
			if vols, err := e.List(); err != nil || !listed(vols, v.id) {
				t.Errorf("volume without directory not listed: %v", err)
			}
			if got, _, _ := e.Capacity(v.pool); got != e.Caps[v.pool]-4*testutil.MiB {
				t.Errorf("capacity of pool %s: %d, want the volume still counted", v.pool, got)
			}
			err := e.Stage(v.id, v.staging)
			if status.Code(err) != codes.FailedPrecondition {
				t.Errorf("stage: %v, want FailedPrecondition", err)
			}
			ctx, cancel := e.Ctx()
			defer cancel()
			h, err := e.P.Node().NodeGetVolumeHealth(ctx, &csi.NodeGetVolumeHealthRequest{VolumeId: v.id})
			// Its pool is there, its data is not (csi.proto: DATA_LOSS,
			// "permanent data loss is known or strongly suspected").
			if err != nil || len(h.GetVolumeHealth().GetHealthStatuses()) == 0 ||
				h.GetVolumeHealth().GetHealthStatuses()[0].GetStatus() != csi.VolumeHealthErrorType_DATA_LOSS ||
				h.GetVolumeHealth().GetHealthStatuses()[0].GetReason() != "DirectoryMissing" {
				t.Errorf("NodeGetVolumeHealth: %v, %v; want DATA_LOSS DirectoryMissing", h, err)
			}
			e.checkMounts("after the failed stage", plusCanary(e))
			e.Must(e.Delete(v.id), "delete the volume without directory")
			e.CheckConverged()
			e.checkCanary()
		})
	}
}

func listed(vols []*csi.Volume, id string) bool {
	for _, v := range vols {
		if v.GetVolumeId() == id {
			return true
		}
	}
	return false
}

// plusCanary is the mounts of an Env with only its canary in use.
func plusCanary(e *env) []string {
	ms := append([]string{e.PathDisk}, e.Disks...)
	return plus(plus(ms, e.canary.staging), e.canary.target)
}

// TestTrashMissing: a pool whose trash directory vanished (an operator's
// cleanup, a repaired filesystem) must still delete volumes for real, or
// refuse: a DeleteVolume that succeeds leaves no data and no directory.
func TestTrashMissing(t *testing.T) {
	for _, kind := range dirKinds {
		t.Run(kind, func(t *testing.T) {
			e := newEnv(t, "mount", testutil.EnvOptions{})
			v := e.create("v", kind)
			e.Must(os.WriteFile(filepath.Join(e.dataDir(v), "f"), []byte("data"), 0o600), "write")
			trash := filepath.Join(e.PoolDir(v.pool), "localdisk", "trash")
			e.Must(os.Remove(trash), "remove the trash")
			if err := e.Delete(v.id); err != nil {
				t.Logf("DeleteVolume without a trash: %v", err)
				e.restart() // re-creates the trash
				e.Must(e.Delete(v.id), "delete after a restart")
			}
			if _, err := os.Lstat(e.dataDir(v)); err == nil {
				t.Errorf("DeleteVolume %s succeeded but left its directory and data in the pool (orphan; capacity released)", v.id)
				os.RemoveAll(e.dataDir(v))
			}
			os.Mkdir(trash, 0o700)
			e.CheckConverged()
		})
	}
}
