package disk

import (
	"os"
	"testing"
	"time"
)

// blockDev is a block device node of this machine, or the test is skipped.
func blockDev(t *testing.T) string {
	for _, dev := range []string{"/dev/loop0", "/dev/sda", "/dev/vda", "/dev/nvme0n1", "/dev/ram0"} {
		if BlockDevice(dev) == nil {
			return dev
		}
	}
	t.Skip("no block device node here")
	return ""
}

// The cache probes a disk's filesystem UUID once while its key holds, and
// again after Refresh, Forget or the TTL.
func TestIdentities_ProbeOnlyWhenStale(t *testing.T) {
	dev := blockDev(t)
	c := NewIdentities()
	probes := 0
	c.probe = func(string) (string, error) { probes++; return "uuid-1", nil }
	now := time.Now()
	c.now = func() time.Time { return now }
	get := func(read func(string) (map[string]string, error)) map[string]string {
		t.Helper()
		id, err := read(dev)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	if id := get(c.Get); id[FSUUID] != "uuid-1" || probes != 1 {
		t.Fatalf("first read: %v after %d probes", id, probes)
	}
	id := get(c.Get)
	id[FSUUID] = "changed by the caller"
	if get(c.Get)[FSUUID] != "uuid-1" || probes != 1 {
		t.Fatalf("cached read probed again (%d) or shared its map", probes)
	}
	get(c.Refresh)
	if probes != 2 {
		t.Fatalf("Refresh did not probe: %d", probes)
	}
	c.Forget(dev)
	get(c.Get)
	if probes != 3 {
		t.Fatalf("Forget kept the entry: %d probes", probes)
	}
	now = now.Add(identityTTL)
	get(c.Get)
	if probes != 4 {
		t.Fatalf("an entry older than the TTL was used: %d probes", probes)
	}
}

func TestIdentities_NotABlockDevice(t *testing.T) {
	c := NewIdentities()
	c.probe = func(string) (string, error) { t.Fatal("probed a non-device"); return "", nil }
	if _, err := c.Get(os.DevNull); err == nil {
		t.Fatal("a character device has an identity")
	}
}

func TestSameDisk(t *testing.T) {
	for _, tc := range []struct {
		a, b map[string]string
		want bool
	}{
		{map[string]string{WWN: "w", FSUUID: "u"}, map[string]string{WWN: "w"}, true},
		{map[string]string{WWN: "w", FSUUID: "u"}, map[string]string{WWN: "w", FSUUID: "v"}, false},
		{map[string]string{WWN: "w"}, map[string]string{Serial: "s"}, false},
		{nil, map[string]string{FSUUID: "u"}, false},
	} {
		if got := SameDisk(tc.a, tc.b); got != tc.want {
			t.Errorf("SameDisk(%v, %v) = %v", tc.a, tc.b, got)
		}
	}
}
