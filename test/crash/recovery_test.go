package crash

import (
	"errors"
	"os/exec"
	"syscall"
	"testing"

	"github.com/localdisk-csi/localdisk/driver/failpoint"
	"github.com/localdisk-csi/localdisk/test/testutil"
)

// TestCrashDuringRecovery crashes the plugin a second time while its
// start-up finishes or rolls back what the first crash left half-done; the
// next start-up and the CO's retry must still converge.
func TestCrashDuringRecovery(t *testing.T) {
	for _, c := range []struct {
		first, recovery string
		s               step
	}{
		{failpoint.DeleteTrashed, failpoint.RecordDropped, step{op: "delete", kinds: dirKinds}},
		{failpoint.DeleteMarked, failpoint.DeleteRemoved, step{op: "delete", kinds: diskKinds}},
		{failpoint.DeleteMarked, failpoint.RecordDropped, step{op: "delete", kinds: diskKinds}},
		{failpoint.DeleteTrashed, failpoint.DeleteRemoved, step{op: "delete", kinds: dirKinds}},
		{failpoint.WipeStarted, failpoint.WipeStarted, step{op: "delete", kinds: []string{"mount"}, files: 3}},
		// A 32 MiB device is zeroed in one chunk: what is left is the rest.
		{failpoint.WipeStarted, failpoint.DeleteRemoved, step{op: "delete", kinds: devKinds}},
		{failpoint.WipeStarted, failpoint.RecordDropped, step{op: "delete", kinds: devKinds}},
	} {
		for _, kind := range c.s.kinds {
			t.Run(c.first+"/"+c.recovery+"/"+kind, func(t *testing.T) {
				crashAndRetry(t, c.first, c.recovery, c.s, kind)
			})
		}
	}
}

// crashStarting starts the plugin armed at point and checks that it dies
// there, in its start-up or in the work it resumes in the background.
func (e *env) crashStarting(point string) {
	e.t.Helper()
	log, err := testutil.RunPluginUntilExit(e.t, failpointBin(e.t),
		e.PluginOptions([]string{failpoint.Env + "=" + point}))
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		e.t.Fatalf("restart armed at %s: exit %v, want a crash there\n%s", point, err, log)
	}
}
