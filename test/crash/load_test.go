package crash

import (
	"fmt"
	"sync"
	"testing"

	"github.com/localdisk-csi/localdisk/driver/failpoint"
	"github.com/localdisk-csi/localdisk/test/testutil"
)

// TestCrashUnderLoad: the plugin dies at a crash point while ten creates
// (then ten deletes) of a pool that holds exactly ten are in flight; after
// a restart every retry succeeds, and the pool is exactly full (then
// exactly empty): no reservation leaked, none lost.
func TestCrashUnderLoad(t *testing.T) {
	for _, c := range []struct{ kind, create, delete string }{
		{"root", failpoint.RecordRenamed + "@7", failpoint.DeleteTrashed + "@4"},
		{"path", failpoint.CreateMkdir + "@5", failpoint.RecordDropped + "@6"},
		{"root", failpoint.RecordWritten + "@3", failpoint.DeleteRemoved + "@8"},
	} {
		t.Run(c.kind+"/"+c.create+"/"+c.delete, func(t *testing.T) {
			e := newEnv(t, "mount", testutil.EnvOptions{})
			vols := make([]*vol, 10)
			for i := range vols {
				vols[i] = &vol{name: fmt.Sprintf("load-%d", i), pool: poolOf[c.kind]}
			}
			for _, phase := range []struct{ op, point string }{{"create", c.create}, {"delete", c.delete}} {
				e.arm(phase.point)
				all(vols, func(v *vol) error { return e.do(phase.op, v) })
				e.P.WaitCrash()
				e.restart()
				for _, err := range all(vols, func(v *vol) error { return e.do(phase.op, v) }) {
					if err != nil {
						t.Errorf("%s retried after a crash at %s under load: %v", phase.op, phase.point, err)
					}
				}
				vs := e.CheckConverged()
				if avail, _, _ := e.Capacity(poolOf[c.kind]); phase.op == "create" && (avail != 0 || len(vs) != 11) {
					t.Errorf("after the creates: %d volumes, %d bytes free; want 11 and 0", len(vs), avail)
				}
			}
			e.checkCanary()
		})
	}
}

// all runs f on every volume at once and returns the errors.
func all(vols []*vol, f func(*vol) error) []error {
	errs := make([]error, len(vols))
	var wg sync.WaitGroup
	for i, v := range vols {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = f(v)
		}()
	}
	wg.Wait()
	return errs
}
