package mesos

import (
	"os"
	"path/filepath"
	"testing"
)

// TestMesos22_UnpublishRemovesTarget checks that NodeUnpublishVolume
// unmounts and removes the target, and is OK when the target is not
// mounted (after a reboot) or already gone: Mesos fails the call whenever
// the target still exists afterwards.
func TestMesos22_UnpublishRemovesTarget(t *testing.T) {
	a := startAgent(t, eachKind)
	vols := a.oneOfEach()
	for _, v := range vols {
		a.mustMount(v.id, v.ctx)
		if err := a.unpublish(v.id); err != nil {
			t.Errorf("%s: NodeUnpublishVolume: %v", v.kind, err)
		}
		wantNoEntry(t, a.target(v.id))
		wantMounts(t, a.mountPath(v.id), a.mountsOf(v.id, a.staging(v.id))...)
		if err := a.unpublish(v.id); err != nil {
			t.Errorf("%s: NodeUnpublishVolume of a target already gone: %v", v.kind, err)
		}
		if err := a.publish(v.id, v.ctx, snw, false); err != nil {
			t.Fatalf("%s: NodePublishVolume: %v", v.kind, err)
		}
	}
	a.reboot() // the targets exist, nothing is mounted
	for _, v := range vols {
		wantDir(t, a.target(v.id))
		if err := a.unpublish(v.id); err != nil {
			t.Errorf("%s: NodeUnpublishVolume of a target not mounted: %v", v.kind, err)
		}
		wantNoEntry(t, a.target(v.id))
	}
}

// TestMesos23_UnstageKeepsStagingDir checks that NodeUnstageVolume unmounts
// the staging path and keeps the directory, also when repeated and when
// nothing is staged (after a reboot): Mesos checks that it exists before
// each retry.
func TestMesos23_UnstageKeepsStagingDir(t *testing.T) {
	a := startAgent(t, eachKind)
	vols := a.oneOfEach()
	for _, v := range vols {
		if err := a.stage(v.id, v.ctx, snw); err != nil {
			t.Fatalf("%s: NodeStageVolume: %v", v.kind, err)
		}
		for i := range 2 {
			if err := a.unstage(v.id); err != nil {
				t.Errorf("%s: NodeUnstageVolume #%d: %v", v.kind, i+1, err)
			}
			wantDir(t, a.staging(v.id))
			wantMounts(t, a.mountPath(v.id))
		}
		if err := a.stage(v.id, v.ctx, snw); err != nil {
			t.Fatalf("%s: NodeStageVolume: %v", v.kind, err)
		}
	}
	a.reboot()
	for _, v := range vols {
		if err := a.unstage(v.id); err != nil {
			t.Errorf("%s: NodeUnstageVolume with nothing staged: %v", v.kind, err)
		}
		wantDir(t, a.staging(v.id))
	}
}

// TestMesos24_NothingLeftUnderMountPath runs Mesos's whole node-side life
// of each volume (stage, publish, again, read-only flips, unpublish,
// unstage), then does what Mesos does next: remove mounts/<id>
// recursively, crossing mount points. Nothing may be mounted there by
// then, and the volume's data must be intact afterwards.
func TestMesos24_NothingLeftUnderMountPath(t *testing.T) {
	a := startAgent(t, eachKind)
	for _, v := range a.oneOfEach() {
		t.Run(v.kind, func(t *testing.T) {
			a.mustMount(v.id, v.ctx)
			writeFile(t, filepath.Join(a.target(v.id), "precious"), v.id)
			a.mustMount(v.id, v.ctx)
			if err := a.unpublish(v.id); err != nil {
				t.Fatal(err)
			}
			if err := a.publish(v.id, v.ctx, snw, true); err != nil {
				t.Fatal(err)
			}
			a.mustUnmount(v.id)
			wantMounts(t, a.mountPath(v.id))
			a.removeMountPath(v.id) // fails the test, deleting nothing, if a mount is left
			if _, err := os.Stat(a.mountPath(v.id)); !os.IsNotExist(err) {
				t.Fatalf("%s still exists: %v", a.mountPath(v.id), err)
			}
			a.mustMount(v.id, v.ctx)
			wantFile(t, filepath.Join(a.target(v.id), "precious"), v.id)
			a.mustUnmount(v.id)
			a.removeMountPath(v.id)
		})
	}
}
