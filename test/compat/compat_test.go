// Package compat runs the real plugin under the seccomp launcher
// (test/seccomp/launcher), where the new mount API and quotactl_fd(2) fail
// with ENOSYS (a kernel without them) or EPERM (a container runtime's
// profile that denies them), and checks what matters most on its mount(2)
// fallback: a read-only publish refuses writes, a read-write one takes
// them, and nothing is left mounted. The csi-sanity, Mesos, crash and
// hostile suites run under the launcher too, with LOCALDISK_TEST_SECCOMP
// (make test-compat).
package compat

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/moby/sys/mountinfo"

	"github.com/localdisk-csi/localdisk/test/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }

// TestCompat_ReadOnlyPublish stages a ROOT, a PATH and a MOUNT volume and
// publishes each read-only and read-write, under each filter and without
// one (where the kernel has the new mount API, so that the test shows the
// launcher is what makes the difference).
func TestCompat_ReadOnlyPublish(t *testing.T) {
	testutil.RequireRoot(t)
	for _, mode := range append(slices.Clone(testutil.SeccompModes), testutil.SeccompOff) {
		t.Run(mode, func(t *testing.T) {
			e := testutil.NewEnv(t, testutil.EnvOptions{Seccomp: mode})
			log := e.P.Log()
			if mode == testutil.SeccompOff {
				if lines := testutil.GrepLog(log, testutil.FallbackLine); len(lines) > 0 {
					t.Fatalf("without the filter, the plugin fell back to mount(2) (no new mount API on this kernel?): %s", lines[0])
				}
				if lines := testutil.GrepLog(log, `mount="open_tree(2)"`); len(lines) == 0 {
					t.Errorf("without the filter, the plugin's log does not say it binds with open_tree(2)")
				}
			} else if err := testutil.CheckSeccompLog(mode, log); err != nil {
				t.Fatal(err)
			}
			disks := testutil.Mounts(t, e.Dir) // the PATH and MOUNT pools' loop disks
			for _, kind := range []struct{ name, pool string }{
				{"root", testutil.RootPool}, {"path", testutil.PathPool}, {"mount", testutil.MountPool},
			} {
				t.Run(kind.name, func(t *testing.T) { readOnlyPublish(e.For(t), kind.name, kind.pool) })
			}
			if got := testutil.Mounts(t, e.Dir); !slices.Equal(got, disks) {
				t.Errorf("mounted below the test directory after every volume was unstaged: %q, want only the disks %q", got, disks)
			}
		})
	}
}

// readOnlyPublish stages one volume of pool, publishes it read-only at one
// target and read-write at another, checks writes, and tears it all down.
func readOnlyPublish(e *testutil.Env, name, pool string) {
	t := e.T
	size := int64(8 * testutil.MiB)
	if name == "mount" {
		size = 0 // a whole disk, whatever its size
	}
	v := e.MustCreate(name, size, map[string]string{"pool": pool})
	id := v.GetVolumeId()
	staging, ro := e.Paths(name + "-ro")
	_, rw := e.Paths(name + "-rw")
	e.Must(e.Stage(id, staging), "NodeStageVolume")
	e.Must(e.Publish(id, staging, ro, true), "NodePublishVolume read-only")
	e.Must(e.Publish(id, staging, rw, false), "NodePublishVolume read-write")
	e.Must(e.Publish(id, staging, ro, true), "NodePublishVolume read-only again (idempotent)")

	err := os.WriteFile(filepath.Join(ro, "refused"), []byte("x"), 0o644)
	if !errors.Is(err, syscall.EROFS) {
		t.Errorf("writing into the read-only target: %v, want EROFS", err)
	}
	if err := os.WriteFile(filepath.Join(rw, "data"), []byte(name), 0o644); err != nil {
		t.Errorf("writing into the read-write target: %v", err)
	}
	if got, err := os.ReadFile(filepath.Join(ro, "data")); err != nil || string(got) != name {
		t.Errorf("the read-only target shows %q, %v; want the read-write target's %q", got, err, name)
	}
	wantOption(t, ro, "ro")
	wantOption(t, rw, "rw")
	if name == "mount" {
		wantOption(t, staging, "rw") // the read-only remount stays on the target
	} else { // staged without a mount: the volume's directory stays writable
		if infos, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter(staging)); err != nil || len(infos) != 0 {
			t.Errorf("%d mounts at the staging path %s (%v), want none", len(infos), staging, err)
		}
		if err := os.WriteFile(filepath.Join(e.VolumeDir(pool, id), "direct"), []byte(name), 0o644); err != nil {
			t.Errorf("writing into the volume's directory: %v", err)
		} else if got, err := os.ReadFile(filepath.Join(rw, "direct")); err != nil || string(got) != name {
			t.Errorf("the read-write target shows %q, %v; want what was written into the volume's directory", got, err)
		}
	}

	e.Must(e.Unpublish(id, ro), "NodeUnpublishVolume read-only")
	e.Must(e.Unpublish(id, rw), "NodeUnpublishVolume read-write")
	e.Must(e.Unstage(id, staging), "NodeUnstageVolume")
	if left := testutil.Mounts(t, e.CODir); len(left) > 0 {
		t.Errorf("left mounted after unpublish and unstage: %q", left)
	}
	e.Must(e.Delete(id), "DeleteVolume")
}

// wantOption checks that the one mount at path has the per-mount option
// opt ("ro" or "rw").
func wantOption(t testing.TB, path, opt string) {
	t.Helper()
	infos, err := mountinfo.GetMounts(mountinfo.SingleEntryFilter(path))
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 1 {
		t.Errorf("%d mounts at %s, want 1", len(infos), path)
		return
	}
	if opts := strings.Split(infos[0].Options, ","); !slices.Contains(opts, opt) {
		t.Errorf("the mount at %s has options %q, want %s", path, infos[0].Options, opt)
	}
}
