package testutil

import (
	"os"
	"testing"
)

// SkipRootEnv is the environment variable that turns the failure of a test
// needing root, when not run as root, into a skip: set it to "1" to run the
// test suite as an ordinary user.
const SkipRootEnv = "SKIP_TESTS_USING_ROOT"

// RequireRoot stops the test unless it runs as root. When not root it skips
// the test if SKIP_TESTS_USING_ROOT=1 is set, and fails it otherwise, so a
// CI job that forgot to run as root cannot pass by skipping everything.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv(SkipRootEnv) == "1" {
		t.Skipf("this test needs root; skipped because %s=1", SkipRootEnv)
	}
	t.Fatalf("this test needs root; run it as root, or set %s=1 to skip it", SkipRootEnv)
}
