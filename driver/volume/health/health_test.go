package health

import (
	"errors"
	"slices"
	"testing"
)

func TestUnavailable(t *testing.T) {
	err := errors.New("gone")
	for _, c := range []struct {
		dirMissing, replaced, disk bool
		sev                        Severity
		reason                     string
	}{
		{true, false, true, DataLoss, "DirectoryMissing"},
		{false, true, true, Inaccessible, "DiskReplaced"},
		{false, false, true, Inaccessible, "DiskMissing"},
		{false, false, false, Inaccessible, "PoolUnavailable"},
	} {
		got := Unavailable(err, c.dirMissing, c.replaced, c.disk)
		if got.Severity != c.sev || got.Reason != c.reason || got.Message != "gone" {
			t.Errorf("Unavailable(%v, %v, %v) = %+v", c.dirMissing, c.replaced, c.disk, got)
		}
	}
}

func TestIDs(t *testing.T) {
	if got := IDs([]string{"b", "a"}, []string{"c", "a"}); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("IDs = %v", got)
	}
	if got := IDs(nil, nil); len(got) != 0 {
		t.Errorf("IDs of nothing = %v", got)
	}
}
