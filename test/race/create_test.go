package race

import (
	"fmt"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"

	"github.com/localdisk-csi/localdisk/test/testutil"
)

// TestCreate_MoreThanFits: 30 creates of 4 MiB at once into a 40 MiB pool
// (and 6 into a pool of 2 disks): exactly as many succeed as fit, the rest
// are RESOURCE_EXHAUSTED, and the pool is never over-committed.
func TestCreate_MoreThanFits(t *testing.T) {
	e := newEnv(t)
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			e := e.For(t)
			n, fit := 30, 10
			if kind == "mount" {
				n, fit = 6, len(e.Disks)
			}
			got := parallel(n, func(i int) error {
				_, err := e.Create(fmt.Sprintf("%s-%d", kind, i), sizeOf(kind), map[string]string{"pool": poolOf[kind]})
				return err
			})
			if count(got, codes.OK) != fit || count(got, codes.ResourceExhausted) != n-fit {
				t.Errorf("%d creates into room for %d: %s; want OK:%d ResourceExhausted:%d", n, fit, tally(got), fit, n-fit)
			}
			if avail, maxVol, err := e.Capacity(poolOf[kind]); err != nil || avail != 0 || maxVol != 0 {
				t.Errorf("GetCapacity of the full pool: %d (max %d), %v; want 0", avail, maxVol, err)
			}
			e.CheckConverged()
		})
	}
	if vols := e.CheckConverged(); len(vols) != 20+len(e.Disks) {
		t.Errorf("%d volumes, want %d", len(vols), 20+len(e.Disks))
	}
}

// TestCreate_SameNameAtOnce: one name created by 10 callers at once is one
// volume, with one ID, charged once.
func TestCreate_SameNameAtOnce(t *testing.T) {
	e := newEnv(t)
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			e := e.For(t)
			ids := make([]string, 10)
			got := parallel(10, func(i int) error {
				v, err := e.Create("same-"+kind, sizeOf(kind), map[string]string{"pool": poolOf[kind]})
				ids[i] = v.GetVolumeId()
				return err
			})
			if count(got, codes.OK) != 10 {
				t.Errorf("10 creates of one name: %s; want all OK", tally(got))
			}
			for _, id := range ids {
				if id != ids[0] {
					t.Errorf("one name, several IDs: %q", ids)
					break
				}
			}
			vols := e.CheckConverged()
			n := 0
			for _, v := range vols {
				if v.GetVolumeContext()["pool"] == poolOf[kind] {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%d volumes in pool %s, want 1", n, poolOf[kind])
			}
			if kind != "mount" {
				if avail, _, _ := e.Capacity(poolOf[kind]); avail != e.Caps[poolOf[kind]]-4*testutil.MiB {
					t.Errorf("GetCapacity = %d, want the volume charged once", avail)
				}
			}
		})
	}
}

// TestCreateDelete_SameNameChurn: creates and deletes of one name race;
// whatever order they land in, the state is consistent afterwards.
func TestCreateDelete_SameNameChurn(t *testing.T) {
	e := newEnv(t)
	for _, kind := range kinds {
		t.Run(kind, func(t *testing.T) {
			e := e.For(t)
			v := e.MustCreate("churn-"+kind, sizeOf(kind), map[string]string{"pool": poolOf[kind]})
			for range 10 {
				got := parallel(8, func(i int) error {
					if i%2 == 0 {
						return e.Delete(v.GetVolumeId())
					}
					_, err := e.Create("churn-"+kind, sizeOf(kind), map[string]string{"pool": poolOf[kind]})
					return err
				})
				for _, c := range got {
					if c != codes.OK && c != codes.Aborted {
						t.Errorf("create/delete churn: %s; want OK (or ABORTED while the other runs)", tally(got))
						break
					}
				}
				e.CheckConverged()
			}
		})
	}
}

// TestExpand_RacesCreates: expansions and creates compete for the last
// room of a pool: what succeeds fits, and the accounting is exact.
func TestExpand_RacesCreates(t *testing.T) {
	e := newEnv(t)
	for _, kind := range []string{"root", "path"} {
		t.Run(kind, func(t *testing.T) {
			e := e.For(t)
			params := map[string]string{"pool": poolOf[kind]}
			var ids []string
			for i := range 5 {
				ids = append(ids, e.MustCreate(fmt.Sprintf("grow-%s-%d", kind, i), 4*testutil.MiB, params).GetVolumeId())
			}
			got := parallel(10, func(i int) error {
				if i < 5 {
					ctx, cancel := e.Ctx()
					defer cancel()
					_, err := e.P.Controller().ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{
						VolumeId: ids[i], CapacityRange: &csi.CapacityRange{RequiredBytes: 8 * testutil.MiB}})
					return err
				}
				_, err := e.Create(fmt.Sprintf("new-%s-%d", kind, i), 4*testutil.MiB, params)
				return err
			})
			if ok := count(got, codes.OK); ok != 5 || count(got, codes.ResourceExhausted) != 5 {
				t.Errorf("5 expansions and 5 creates of 4 MiB for 20 MiB free: %s; want 5 OK, 5 ResourceExhausted", tally(got))
			}
			e.CheckConverged()
			if avail, _, _ := e.Capacity(poolOf[kind]); avail != 0 {
				t.Errorf("GetCapacity after the race: %d, want 0", avail)
			}
		})
	}
}
