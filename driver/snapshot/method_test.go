package snapshot

import (
	"errors"
	"strings"
	"testing"

	"github.com/localdisk-csi/localdisk/driver/capacity"
	"github.com/localdisk-csi/localdisk/driver/pool"
	"github.com/localdisk-csi/localdisk/driver/volume"
)

func TestDecide(t *testing.T) {
	for _, tc := range []struct {
		name        string
		spec        pool.Spec
		enforcement string
		want        Method
		why         string
	}{
		{"a MOUNT pool refuses", pool.Spec{Name: "d", Kind: pool.Mount}, "", None, "MOUNT pool"},
		{"a MOUNT pool refuses whatever it says", pool.Spec{Name: "d", Kind: pool.Mount, Snapshots: pool.SnapshotsCopy}, "", None, "whole disks"},
		{"qgroups make btrfs snapshots", pool.Spec{Name: "b", Kind: pool.Path}, capacity.EnforceBtrfs, Btrfs, ""},
		{"copy when the pool says so", pool.Spec{Name: "e", Kind: pool.Path, Snapshots: pool.SnapshotsCopy}, capacity.EnforceProject, Copy, ""},
		{"nothing else refuses, naming the option", pool.Spec{Name: "e", Kind: pool.Root}, "", None, "snapshots: copy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Decide(tc.spec, tc.enforcement, nil)
			if d.Method != tc.want {
				t.Errorf("method %s, want %s", d.Method, tc.want)
			}
			if tc.why == "" {
				if d.Reason != nil {
					t.Errorf("reason %v, want none", d.Reason)
				}
				return
			}
			if !errors.Is(d.Reason, ErrNotSupported) || !errors.Is(d.Reason, volume.ErrInvalid) || !strings.Contains(d.Reason.Error(), tc.why) {
				t.Errorf("reason %v, want ErrNotSupported saying %q", d.Reason, tc.why)
			}
		})
	}
	if None.String() != "none" || Reflink.String() != "reflink" {
		t.Errorf("String: %q %q", None, Reflink)
	}
}
