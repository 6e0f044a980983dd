package plugin

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"

	"github.com/localdisk-csi/localdisk/test/testutil"
)

// TestDefaultPool_KeepsTheNodeHealthy: with no pools file, the plugin's
// ROOT pool on a filesystem of known size offers at most 85% of it (a root
// pool keeps 15% free, at least 2 GiB), and what others write to the same
// filesystem lowers GetCapacity by as much: it never offers space that
// could not be written.
func TestDefaultPool_KeepsTheNodeHealthy(t *testing.T) {
	testutil.RequireRoot(t)
	dir := testutil.ShortTempDir(t)
	fs := testutil.LoopDisk(t, dir, 16<<10, "ext4") // 16 GiB, sparse
	var st unix.Statfs_t
	if err := unix.Statfs(fs, &st); err != nil {
		t.Fatal(err)
	}
	size := int64(st.Blocks) * st.Bsize
	p := testutil.StartPlugin(t, testutil.BuildPlugin(t), testutil.PluginOptions{
		Endpoint: filepath.Join(dir, "csi.sock"), NodeID: "node-1", StateDir: filepath.Join(fs, "state"),
	})
	capacity := func() int64 {
		t.Helper()
		r, err := p.Controller().GetCapacity(ctx(t), &csi.GetCapacityRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return r.GetAvailableCapacity()
	}
	before := capacity()
	if before <= 0 || before > size*85/100 {
		t.Fatalf("GetCapacity = %d on a filesystem of %d bytes: want more than 0 and at most 85%% (%d)", before, size, size*85/100)
	}
	// Another program takes 3 GiB of the same filesystem.
	f, err := os.Create(filepath.Join(fs, "other-program"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Fallocate(int(f.Fd()), 0, 0, 3<<30); err != nil {
		t.Fatal(err)
	}
	after := capacity()
	if drop := before - after; drop < 3<<30-64<<20 || drop > 3<<30+64<<20 {
		t.Errorf("GetCapacity went from %d to %d after 3 GiB were written beside the pool: want it 3 GiB lower", before, after)
	}
	// A volume larger than what is left is refused, not made.
	_, err = p.Controller().CreateVolume(ctx(t), &csi.CreateVolumeRequest{Name: "too-big", VolumeCapabilities: []*csi.VolumeCapability{rwo},
		CapacityRange: &csi.CapacityRange{RequiredBytes: after + 64<<20}})
	wantCode(t, err, codes.ResourceExhausted, "a volume larger than the filesystem can still hold")
}
