package race

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/test/testutil"
)

// TestDelete_RacesNode: DeleteVolume races NodeStageVolume (volume not
// staged), NodePublishVolume (volume staged), and a CO's unstage-then-delete
// races a publish, many rounds: never do both sides succeed, which would
// leave a mount of a deleted (or wiped) volume.
func TestDelete_RacesNode(t *testing.T) {
	e := newEnv(t)
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			e := e.For(t)
			params := map[string]string{"pool": poolOf[kind]}
			for i := range 12 {
				name := fmt.Sprintf("%s-%d", kind, i)
				v := e.MustCreate(name, sizeOf(kind), params)
				id := v.GetVolumeId()
				staging, target := e.Paths(name)
				var race string
				var got []codes.Code
				switch i % 3 {
				case 0:
					race = "delete vs stage"
					got = parallel(2, func(j int) error {
						if j == 0 {
							return e.Delete(id)
						}
						return e.Stage(id, staging)
					})
				case 1:
					race = "delete vs publish"
					e.Must(e.Stage(id, staging), "stage")
					got = parallel(2, func(j int) error {
						if j == 0 {
							return e.Delete(id)
						}
						return e.Publish(id, staging, target, false)
					})
				case 2:
					race = "unstage+delete vs publish"
					e.Must(e.Stage(id, staging), "stage")
					got = parallel(2, func(j int) error {
						if j == 0 {
							if err := e.Unstage(id, staging); err != nil {
								return err
							}
							return e.Delete(id)
						}
						return e.Publish(id, staging, target, false)
					})
				}
				if got[0] == codes.OK && got[1] == codes.OK {
					t.Errorf("round %d, %s: both succeeded; mounted now: %v; files at %s: %v", i, race,
						testutil.Mounts(t, filepath.Dir(staging)), target, ls(target))
				}
				for _, c := range got {
					if c != codes.OK && c != codes.FailedPrecondition && c != codes.NotFound && c != codes.Aborted {
						t.Errorf("round %d, %s: %s", i, race, tally(got))
					}
				}
				// Clean up whatever won.
				e.Must(e.Unpublish(id, target), "unpublish")
				e.Must(e.Unstage(id, staging), "unstage")
				e.Must(e.Delete(id), "delete")
			}
			if m := testutil.Mounts(t, e.CODir); len(m) != 0 {
				t.Errorf("left mounted: %v", m)
			}
			e.CheckConverged()
		})
	}
}

func ls(dir string) []string {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return []string{err.Error()}
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// TestPublish_ParallelOneTarget: parallel stages to one staging path and
// publishes to one target make exactly one mount each; parallel unpublishes
// all succeed and leave none; two volumes racing for one target: one wins,
// the others get FAILED_PRECONDITION.
func TestPublish_ParallelOneTarget(t *testing.T) {
	e := newEnv(t)
	for _, kind := range []string{"root", "path", "mount"} {
		t.Run(kind, func(t *testing.T) {
			e := e.For(t)
			params := map[string]string{"pool": poolOf[kind]}
			a := e.MustCreate("a-"+kind, sizeOf(kind), params).GetVolumeId()
			stagingA, target := e.Paths("a-" + kind)
			all := func(what string, n int, f func(int) error) {
				t.Helper()
				if got := parallel(n, f); count(got, codes.OK) != n {
					t.Errorf("%d parallel %s: %s, want all OK", n, what, tally(got))
				}
			}
			all("stages", 10, func(int) error { return e.Stage(a, stagingA) })
			// A ROOT or PATH volume is staged without a mount: its staging
			// record names its staging path, once.
			want := 1
			if kind != "mount" {
				want = 0
				checkRecord(t, e, a, stagingA)
			}
			if n := mountsAt(t, stagingA); n != want {
				t.Errorf("%d mounts at the staging path, want %d", n, want)
			}
			all("publishes", 10, func(int) error { return e.Publish(a, stagingA, target, false) })
			if n := mountsAt(t, target); n != 1 {
				t.Errorf("%d mounts at the target, want 1", n)
			}
			all("unpublishes", 10, func(int) error { return e.Unpublish(a, target) })
			if n := mountsAt(t, target); n != 0 {
				t.Errorf("%d mounts at the target after unpublish, want 0", n)
			}

			b := e.MustCreate("b-"+kind, sizeOf(kind), params).GetVolumeId()
			stagingB, _ := e.Paths("b-" + kind)
			e.Must(e.Stage(b, stagingB), "stage b")
			got := parallel(10, func(i int) error {
				if i%2 == 0 {
					return e.Publish(a, stagingA, target, false)
				}
				return e.Publish(b, stagingB, target, false)
			})
			okA, okB := 0, 0
			for i, c := range got {
				switch {
				case c == codes.OK && i%2 == 0:
					okA++
				case c == codes.OK:
					okB++
				case c != codes.FailedPrecondition:
					t.Errorf("publish %d: %v", i, c)
				}
			}
			if (okA == 0) == (okB == 0) || okA+okB != 5 {
				t.Errorf("two volumes raced for one target: %d of a, %d of b succeeded; want one volume's 5", okA, okB)
			}
			if n := mountsAt(t, target); n != 1 {
				t.Errorf("%d mounts at the contested target, want 1", n)
			}
			winner := a
			if okB > 0 {
				winner = b
			}
			if err := e.Unpublish(map[string]string{a: b, b: a}[winner], target); status.Code(err) != codes.FailedPrecondition {
				t.Errorf("unpublish of the other volume's target: %v, want FailedPrecondition (the mount is not its)", err)
			}
			e.Must(e.Unpublish(winner, target), "unpublish")
			for _, v := range [][2]string{{a, stagingA}, {b, stagingB}} {
				e.Must(e.Unstage(v[0], v[1]), "unstage")
				e.Must(e.Delete(v[0]), "delete")
			}
			e.CheckConverged()
		})
	}
}

// checkRecord checks that volume id's staging record names exactly staging.
func checkRecord(t *testing.T, e *testutil.Env, id, staging string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.StateDir, layout.StagingDir, id))
	var rec struct{ Paths []string }
	if err == nil {
		err = json.Unmarshal(b, &rec)
	}
	canon, _ := filepath.EvalSymlinks(staging)
	if err != nil || len(rec.Paths) != 1 || rec.Paths[0] != canon {
		t.Errorf("staging record of %s: %q, %v; want it staged at %s only", id, b, err, canon)
	}
}
