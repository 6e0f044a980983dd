package kubernetes

import (
	"testing"

	"github.com/localdisk-csi/localdisk/driver/pool"
)

// CheckRootReserve fails t unless every ROOT pool of c (on the node's root
// disk, shared with kubelet and the container runtime) keeps at least 15%
// of its filesystem free, and at least 2 GiB: kubelet evicts every pod of a
// node whose filesystem has less than 10% free, and images and logs need
// the rest. The shipped pools files (the ConfigMap, the chart's values)
// are checked with it.
func CheckRootReserve(t testing.TB, what string, c *pool.Config) {
	t.Helper()
	for _, s := range c.Pools {
		if s.Kind != pool.Root {
			continue
		}
		for _, size := range []int64{8 << 30, 100 << 30, 4 << 40} {
			if got, want := s.ReserveOf(size), max(size*15/100, 2<<30); got < want {
				t.Errorf("%s: root pool %q keeps %d bytes of a %d-byte filesystem free, want at least %d (15%%, at least 2Gi)", what, s.Name, got, size, want)
			}
		}
	}
}
