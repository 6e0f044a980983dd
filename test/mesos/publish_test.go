package mesos

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
)

// vol is a volume as Mesos knows it: its ID and context.
type vol struct {
	kind string
	name string // empty for a pre-existing disk
	id   string
	ctx  map[string]string
}

// eachKind is an agent with one pool of each kind, for tests that run once
// per kind.
var eachKind = setup{RootMB: 64, Paths: []pathDisk{{DiskMiB: 64, MB: 32}}, Mounts: []int{32}}

// oneOfEach creates a ROOT and a PATH volume and imports the MOUNT disk as
// Mesos imports a pre-existing disk.
func (a *agent) oneOfEach() []vol {
	a.t.Helper()
	var out []vol
	for _, kind := range []string{"root", "path"} {
		name := newUUID()
		v := a.mustCreate(name, 8*mib, map[string]string{"kind": kind})
		out = append(out, vol{kind, name, v.GetVolumeId(), v.GetVolumeContext()})
	}
	id := a.diskID(0)
	vctx := a.list()[id].GetVolumeContext()
	if resp, err := a.validate(id, vctx, snw, map[string]string{"kind": "mount"}); err != nil || resp.GetConfirmed() == nil {
		a.t.Fatalf("importing disk %s: %v, %v", id, resp, err)
	}
	return append(out, vol{"mount", "", id, vctx})
}

// shown is where volume v's data shows besides its target: a ROOT or PATH
// volume's directory in its pool (oneOfEach's; such a volume is staged
// without a mount), or a whole disk's own mount (oneOfEach's disk 0),
// whose staging path shows only its staging mark.
func (a *agent) shown(v vol) string {
	switch v.kind {
	case "mount":
		return a.mountRoots[0]
	case "root": // the ROOT pool is the agent's work dir
		return filepath.Join(a.work, "localdisk", "volumes", v.id)
	}
	return filepath.Join(a.pathRoots[0], "localdisk", "volumes", v.id)
}

// mountsOf keeps, of a volume's staging and target paths, those that are
// mounts while it is staged or published: a whole disk's staging path
// shows its staging mark, a ROOT or PATH volume is staged without a mount.
func (a *agent) mountsOf(id string, paths ...string) []string {
	if a.list()[id].GetVolumeContext()["kind"] == "mount" {
		return paths
	}
	return slices.DeleteFunc(paths, func(p string) bool { return p == a.staging(id) })
}

var idRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// TestMesos15_VolumeIDsNeedNoEncoding checks that every volume ID, whatever
// the name it was created with, is made of [A-Za-z0-9_-] (so Mesos's
// percent-encoded mount path is the ID itself) and is never . or .., and
// that the volumes publish under the Mesos layout.
func TestMesos15_VolumeIDsNeedNoEncoding(t *testing.T) {
	a := startAgent(t, eachKind)
	names := []string{newUUID(), "../../etc", ".", "..", "a b/c%d?e", strings.Repeat("long-name-", 30)}
	for i, name := range names {
		kind := []string{"root", "path"}[i%2]
		a.mustCreate(name, mib, map[string]string{"kind": kind})
	}
	listed := a.list()
	if len(listed) != len(names)+1 {
		t.Errorf("%d volumes listed, want %d", len(listed), len(names)+1)
	}
	for id := range listed {
		if !idRE.MatchString(id) || id == "." || id == ".." || percentEncode(id) != id {
			t.Errorf("volume ID %q needs encoding in a path (encoded: %q)", id, percentEncode(id))
		}
	}
	for _, v := range a.oneOfEach() {
		a.mustMount(v.id, v.ctx)
		wantMounts(t, a.mountRoot(), a.mountsOf(v.id, a.staging(v.id), a.target(v.id))...)
		a.mustUnmount(v.id)
		a.removeMountPath(v.id)
	}
}

// TestMesos16_StagingExistsTargetParentOnly stages onto the existing empty
// staging directory that Mesos made and publishes where only the parent of
// the target exists: the plugin creates the target.
func TestMesos16_StagingExistsTargetParentOnly(t *testing.T) {
	a := startAgent(t, eachKind)
	for _, v := range a.oneOfEach() {
		t.Run(v.kind, func(t *testing.T) {
			if err := os.MkdirAll(a.staging(v.id), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := a.stage(v.id, v.ctx, snw); err != nil {
				t.Fatalf("NodeStageVolume onto an existing empty directory: %v", err)
			}
			wantNoEntry(t, a.target(v.id))
			if err := a.publish(v.id, v.ctx, snw, false); err != nil {
				t.Fatalf("NodePublishVolume with only the target's parent: %v", err)
			}
			wantDir(t, a.target(v.id))
			wantMounts(t, a.mountPath(v.id), a.mountsOf(v.id, a.staging(v.id), a.target(v.id))...)
			writeFile(t, filepath.Join(a.target(v.id), "f"), v.kind)
			wantFile(t, filepath.Join(a.shown(v), "f"), v.kind)
			a.mustUnmount(v.id)
		})
	}
}

// TestMesos17_ReadonlyHonoured publishes with readonly and with a reader-only
// access mode (the CSI isolator's RO volumes): the target is really
// read-only; otherwise it is writable.
func TestMesos17_ReadonlyHonoured(t *testing.T) {
	a := startAgent(t, eachKind)
	for _, v := range a.oneOfEach() {
		t.Run(v.kind, func(t *testing.T) {
			for _, tc := range []struct {
				name     string
				cap      *csi.VolumeCapability
				readonly bool
				wantRO   bool
			}{
				{"writer", snw, false, false},
				{"writer, readonly", snw, true, true},
				{"reader only", sro, false, true},
				{"reader only, readonly", sro, true, true},
			} {
				if err := a.stage(v.id, v.ctx, tc.cap); err != nil {
					t.Fatalf("%s: NodeStageVolume: %v", tc.name, err)
				}
				if err := a.publish(v.id, v.ctx, tc.cap, tc.readonly); err != nil {
					t.Fatalf("%s: NodePublishVolume: %v", tc.name, err)
				}
				err := os.WriteFile(filepath.Join(a.target(v.id), "w"), []byte("x"), 0o644)
				switch {
				case tc.wantRO && !errors.Is(err, syscall.EROFS):
					t.Errorf("%s: writing to the target: %v, want EROFS", tc.name, err)
				case !tc.wantRO && err != nil:
					t.Errorf("%s: writing to the target: %v", tc.name, err)
				}
				if ro := slices.Contains(mountOptions(t, a.target(v.id)), "ro"); ro != tc.wantRO {
					t.Errorf("%s: target mounted ro=%v, want %v", tc.name, ro, tc.wantRO)
				}
				a.mustUnmount(v.id)
			}
		})
	}
}

// TestMesos18_RebootRestage writes data, reboots (nothing mounted, the
// directories left), and stages and publishes onto the same directories
// again.
func TestMesos18_RebootRestage(t *testing.T) {
	a := startAgent(t, eachKind)
	vols := a.oneOfEach()
	for _, v := range vols {
		a.mustMount(v.id, v.ctx)
		writeFile(t, filepath.Join(a.target(v.id), "data"), "before reboot "+v.kind)
	}
	listed := a.list()
	a.reboot()
	for _, v := range vols {
		wantMounts(t, a.mountPath(v.id))
		wantDir(t, a.staging(v.id))
		wantDir(t, a.target(v.id))
		a.mustMount(v.id, v.ctx)
		wantMounts(t, a.mountPath(v.id), a.mountsOf(v.id, a.staging(v.id), a.target(v.id))...)
		wantFile(t, filepath.Join(a.target(v.id), "data"), "before reboot "+v.kind)
		if _, ok := listed[v.id]; !ok {
			t.Errorf("volume %s was not listed before the reboot", v.id)
		}
	}
	if got := a.list(); len(got) != len(listed) {
		t.Errorf("%d volumes listed after the reboot, %d before", len(got), len(listed))
	}
	for _, v := range vols {
		a.mustUnmount(v.id)
		a.removeMountPath(v.id)
	}
}

// TestMesos19_RepeatedCallsStackNothing stages and publishes each volume
// again and again (the CSI isolator does for each container, the resource
// provider after its own restarts): every call succeeds, and exactly one
// mount stays at the staging path and one at the target.
func TestMesos19_RepeatedCallsStackNothing(t *testing.T) {
	a := startAgent(t, eachKind)
	vols := a.oneOfEach()
	for round := range 3 {
		if round == 2 {
			a.restart()
		}
		for _, v := range vols {
			a.mustMount(v.id, v.ctx)
			if err := a.stage(v.id, v.ctx, snw); err != nil {
				t.Errorf("round %d: NodeStageVolume again: %v", round, err)
			}
			if err := a.publish(v.id, v.ctx, snw, false); err != nil {
				t.Errorf("round %d: NodePublishVolume again: %v", round, err)
			}
			wantMounts(t, a.mountPath(v.id), a.mountsOf(v.id, a.staging(v.id), a.target(v.id))...)
		}
	}
	for _, v := range vols {
		a.mustUnmount(v.id)
		wantMounts(t, a.mountPath(v.id))
	}
}

// TestMesos20_PublishKnownOnlyByID publishes volumes that this plugin
// process never created nor listed: only the ID and the context a
// framework supplies, no secrets, no parameters.
func TestMesos20_PublishKnownOnlyByID(t *testing.T) {
	a := startAgent(t, eachKind)
	vols := a.oneOfEach()
	a.restart()
	for _, v := range vols {
		a.mustMount(v.id, v.ctx)
		writeFile(t, filepath.Join(a.target(v.id), "by-id"), v.id)
		wantFile(t, filepath.Join(a.shown(v), "by-id"), v.id)
		a.mustUnmount(v.id)
	}
	a.p.Kill()
	a.p.Restart()
	for _, v := range vols {
		a.mustMount(v.id, v.ctx)
		wantFile(t, filepath.Join(a.target(v.id), "by-id"), v.id)
		a.mustUnmount(v.id)
	}
}

// TestMesos21_ChownTargetAndWipeContents does what Mesos does to a target:
// chown it (not recursively) to a task's user, who then writes there; and
// on DESTROY, remove everything in it (keeping the target) before
// unpublishing, unstaging and deleting.
func TestMesos21_ChownTargetAndWipeContents(t *testing.T) {
	const nobody = 65534
	a := startAgent(t, eachKind)
	if err := os.Chmod(a.dir, 0o755); err != nil { // let the task's user reach the work dir
		t.Fatal(err)
	}
	for _, v := range a.oneOfEach() {
		t.Run(v.kind, func(t *testing.T) {
			a.mustMount(v.id, v.ctx)
			target := a.target(v.id)
			if err := os.Chown(target, nobody, nobody); err != nil {
				t.Fatalf("chown of the target: %v", err)
			}
			task := exec.Command("/bin/sh", "-c", `mkdir "$1/app" && echo task > "$1/app/out"`, "sh", target)
			task.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
			if out, err := task.CombinedOutput(); err != nil {
				t.Fatalf("a task running as uid %d cannot write to the chowned target: %v: %s", nobody, err, out)
			}
			if uid := ownerOf(t, filepath.Join(target, "app", "out")); uid != nobody {
				t.Errorf("the task's file is owned by %d, want %d", uid, nobody)
			}
			wantFile(t, filepath.Join(a.shown(v), "app", "out"), "task\n")

			// DESTROY: Mesos empties the target itself, keeping it.
			for _, name := range entries(t, target) {
				if err := os.RemoveAll(filepath.Join(target, name)); err != nil {
					t.Fatalf("wiping the target's contents: %v", err)
				}
			}
			wantMounts(t, a.mountPath(v.id), a.mountsOf(v.id, a.staging(v.id), target)...)
			if left := entries(t, a.shown(v)); len(left) != 0 {
				t.Errorf("the volume holds %q after Mesos wiped the target", left)
			}
			a.mustUnmount(v.id)
			a.removeMountPath(v.id)
			if err := a.delete(v.id); err != nil {
				t.Errorf("DeleteVolume(%s): %v", v.id, err)
			}
		})
	}
}
