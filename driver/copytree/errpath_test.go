package copytree

import (
	"errors"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestErrPathBounded: an error about an entry 10,000 levels down names
// it by a bounded path (its last names and its depth), not by a path of
// 20,000 bytes or more that would become a gRPC status header and a log
// line; a short path is named whole.
func TestErrPathBounded(t *testing.T) {
	rel := strings.Repeat("d/", 10000) + "file"
	err := wrapErr("copying", rel, unix.ENOSPC)
	if !errors.Is(err, ErrNoSpace) || !errors.Is(err, unix.ENOSPC) {
		t.Errorf("%v: not ErrNoSpace and ENOSPC", err)
	}
	msg := err.Error()
	if len(msg) > 2*maxErrPath || !strings.Contains(msg, "/d/d/file (10001 levels deep)") {
		t.Errorf("error of %d bytes: %.200q...; want at most %d bytes ending in the entry and its depth", len(msg), msg, 2*maxErrPath)
	}
	long := strings.Repeat(strings.Repeat("n", 255)+"/", 40) + "x"
	if msg := wrapErr("copying", long, unix.EIO).Error(); len(msg) > 2*maxErrPath || !strings.Contains(msg, "/x (41 levels deep)") {
		t.Errorf("long names: error of %d bytes: %.200q", len(msg), msg)
	}
	if msg := wrapErr("copying", "a/b", unix.EIO).Error(); msg != "copytree: copying a/b: input/output error" {
		t.Errorf("short path: %q", msg)
	}
}
