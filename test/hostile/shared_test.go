package hostile

import (
	"testing"

	"google.golang.org/grpc/codes"

	"github.com/localdisk-csi/localdisk/test/testutil"
)

// TestStaging_SharedPath: a CO that stages two volumes at one staging path
// gets FAILED_PRECONDITION for the second, whichever kinds they are and in
// whichever order: a ROOT volume is staged without a mount (its staging
// record names the path), a MOUNT volume with a mount there. Nothing is
// mounted for the refused one, and the first stays staged there.
func TestStaging_SharedPath(t *testing.T) {
	e := newEnv(t)
	for _, order := range [][2]string{{"root", "mount"}, {"mount", "root"}, {"root", "path"}} {
		t.Run(order[0]+"-then-"+order[1], func(t *testing.T) {
			e := e.sub(t)
			name := order[0] + "-" + order[1]
			first := e.MustCreate("first-"+name, sizeOf(order[0]), map[string]string{"pool": poolOf[order[0]]}).GetVolumeId()
			second := e.MustCreate("second-"+name, sizeOf(order[1]), map[string]string{"pool": poolOf[order[1]]}).GetVolumeId()
			staging, target := e.Paths("shared-" + name)
			e.Must(e.Stage(first, staging), "stage the first volume")
			mounts := testutil.Mounts(t, e.CODir)
			wantCode(t, e.Stage(second, staging), "stage of a second volume at the staging path", codes.FailedPrecondition)
			if got := testutil.Mounts(t, e.CODir); len(got) != len(mounts) {
				t.Errorf("mounts after the refused stage: %q, want %q", got, mounts)
			}
			e.Must(e.Publish(first, staging, target, false), "publish the first volume")
			wantCode(t, e.Delete(first), "delete of the first volume, staged", codes.FailedPrecondition)
			e.Must(e.Unpublish(first, target), "unpublish")
			e.Must(e.Unstage(first, staging), "unstage")
			e.Must(e.Stage(second, staging), "stage the second volume once the path is free")
			e.Must(e.Unstage(second, staging), "unstage the second volume")
			e.Must(e.Delete(first), "delete")
			e.Must(e.Delete(second), "delete")
			if m := testutil.Mounts(t, e.CODir); len(m) != 0 {
				t.Errorf("left mounted: %q", m)
			}
		})
	}
	e.CheckConverged()
}
