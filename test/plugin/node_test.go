package plugin

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"

	"github.com/localdisk-csi/localdisk/test/testutil"
)

func TestPublish_ReadOnlyIsReallyReadOnly(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		name string
		ro   bool
		c    *csi.VolumeCapability
	}{
		{"readonly flag", true, rwo},
		{"reader-only mode", false, mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_READER_ONLY)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := e.create("ro-"+tc.name, mib, nil)
			id := v.GetVolumeId()
			staging, target := e.paths(id)
			e.must(e.stage(id, staging))
			e.write(id, staging, "f", []byte("x"))
			e.must(e.publish(id, staging, target, tc.ro, tc.c))
			if err := os.WriteFile(filepath.Join(target, "g"), nil, 0o644); !errors.Is(err, unix.EROFS) {
				t.Errorf("write through a read-only publish: %v", err)
			}
			if data, err := os.ReadFile(filepath.Join(target, "f")); err != nil || string(data) != "x" {
				t.Errorf("read: %q %v", data, err)
			}
			e.must(e.publish(id, staging, target, tc.ro, tc.c)) // same again: OK
			wantCode(t, e.publish(id, staging, target, false, rwo), codes.AlreadyExists, "same target, read-write")
			e.must(e.unpublish(id, target))
			e.must(e.unstage(id, staging))
			e.must(e.delete(id))
		})
	}
}

func TestPublish_ConflictsAndPreconditions(t *testing.T) {
	e := newEnv(t)
	a := e.create("a", mib, nil).GetVolumeId()
	b := e.create("b", mib, nil).GetVolumeId()
	sa, ta := e.paths(a)
	sb, _ := e.paths(b)
	wantCode(t, e.publish(a, sa, ta, false, rwo), codes.FailedPrecondition, "publish before stage")
	e.must(e.stage(a, sa))
	e.must(e.stage(b, sb))
	wantCode(t, e.stage(a, sb), codes.FailedPrecondition, "stage onto another volume's staging path")
	e.must(e.publish(a, sa, ta, false, rwo))
	wantCode(t, e.publish(b, sb, ta, false, rwo), codes.FailedPrecondition, "publish onto another volume's target")
	wantCode(t, e.publish(b, sa, filepath.Join(filepath.Dir(ta), "t2"), false, rwo), codes.FailedPrecondition, "publish from another volume's staging")
	wantCode(t, e.delete(a), codes.FailedPrecondition, "delete while published")
	wantCode(t, e.publish("nope", sa, ta, false, rwo), codes.NotFound, "unknown volume")
	block := &csi.VolumeCapability{AccessType: &csi.VolumeCapability_Block{Block: &csi.VolumeCapability_BlockVolume{}},
		AccessMode: rwo.AccessMode}
	wantCode(t, e.publish(a, sa, ta, false, block), codes.FailedPrecondition, "block on a directory volume (the spec: exceeds capabilities)")

	// SINGLE_NODE_SINGLE_WRITER: one target at a time.
	snsw := mountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER)
	wantCode(t, e.publish(a, sa, filepath.Join(filepath.Dir(ta), "t3"), false, snsw), codes.FailedPrecondition, "second SNSW target")

	// Repeated stage and publish stack nothing; unpublish removes the
	// target, unstage keeps the staging dir.
	before := testutil.Mounts(t, e.dir)
	e.must(e.stage(a, sa))
	e.must(e.publish(a, sa, ta, false, rwo))
	if after := testutil.Mounts(t, e.dir); !slices.Equal(before, after) {
		t.Errorf("replays changed the mounts:\n%v\n%v", before, after)
	}
	e.must(e.unpublish(a, ta))
	e.must(e.unpublish(a, ta))
	if _, err := os.Lstat(ta); !os.IsNotExist(err) {
		t.Errorf("target not removed: %v", err)
	}
	e.must(e.unstage(a, sa))
	e.must(e.unstage(a, sa))
	if fi, err := os.Stat(sa); err != nil || !fi.IsDir() {
		t.Errorf("staging dir not kept: %v", err)
	}
	e.must(e.unstage(b, sb))
	e.must(e.delete(a))
	e.must(e.delete(b))
}

func TestPublish_HostileTargets(t *testing.T) {
	e := newEnv(t)
	id := e.create("h", mib, nil).GetVolumeId()
	staging, target := e.paths(id)
	e.must(e.stage(id, staging))
	// A symlinked target pointing elsewhere: never mounted through.
	elsewhere := filepath.Join(e.dir, "elsewhere")
	os.Mkdir(elsewhere, 0o755)
	os.Symlink(elsewhere, target)
	wantCode(t, e.publish(id, staging, target, false, rwo), codes.FailedPrecondition, "symlinked target")
	if m := testutil.Mounts(t, elsewhere); len(m) != 0 {
		t.Errorf("mounted through a symlink: %v", m)
	}
	// Unpublish of the symlink removes the link, never what it points to.
	e.must(e.unpublish(id, target))
	if _, err := os.Stat(elsewhere); err != nil {
		t.Errorf("symlink's target removed: %v", err)
	}
	for _, bad := range []string{"relative/target", "/", ""} {
		if err := e.publish(id, staging, bad, false, rwo); err == nil {
			t.Errorf("publish to %q succeeded", bad)
		}
	}
	// A target whose unmount left files behind is not removed (no data is
	// deleted through unpublish).
	e.must(e.publish(id, staging, target, false, rwo))
	e.must(e.unpublish(id, target))
	os.Mkdir(target, 0o755)
	os.WriteFile(filepath.Join(target, "precious"), []byte("x"), 0o644)
	wantCode(t, e.unpublish(id, target), codes.FailedPrecondition, "unpublish of a non-empty, unmounted target")
	if _, err := os.Stat(filepath.Join(target, "precious")); err != nil {
		t.Errorf("file under the target lost: %v", err)
	}
	os.RemoveAll(target)
	e.must(e.unstage(id, staging))
	e.must(e.delete(id))
}
