package plugin

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

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
	// localdisk status says the same as GetCapacity.
	out, err := exec.Command(testutil.BuildPlugin(t), "status", "-o", "json", "--endpoint", p.Address()).Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf(`"free":%d`, after); !strings.Contains(strings.ReplaceAll(string(out), " ", ""), want) {
		t.Errorf("localdisk status does not show %s:\n%s", want, out)
	}
	// A volume larger than what is left is refused, not made.
	create := func(name string, size int64) error {
		_, err := p.Controller().CreateVolume(ctx(t), &csi.CreateVolumeRequest{Name: name, VolumeCapabilities: []*csi.VolumeCapability{rwo},
			CapacityRange: &csi.CapacityRange{RequiredBytes: size}})
		return err
	}
	wantCode(t, create("too-big", after+64<<20), codes.ResourceExhausted, "a volume larger than the filesystem can still hold")
	// Volumes not written yet keep their room: two that each fit, but not
	// together, are not both made (what they may still write counts).
	half := (after/2 + 64<<20) / (1 << 20) * (1 << 20)
	if err := create("first", half); err != nil {
		t.Fatal(err)
	}
	if got := capacity(); got != after-half {
		t.Errorf("GetCapacity after a %d-byte volume = %d, want %d", half, got, after-half)
	}
	wantCode(t, create("second", half), codes.ResourceExhausted, "a second volume the filesystem could not hold with the first")
}

// TestOverused_Reported: where capacity is accounted, not enforced (ext4
// without prjquota), volumes that write past their sizes are reported by
// the health watch: `localdisk status` says OVERUSED, the metrics show the
// pool's use above its allocation (the shipped alert's expression), and
// the volume's health is DEGRADED OverCapacity.
func TestOverused_Reported(t *testing.T) {
	testutil.RequireRoot(t)
	dir := testutil.ShortTempDir(t)
	data := testutil.LoopDisk(t, dir, 64, "ext4")
	addr := freeAddr(t)
	cfg := fmt.Sprintf("pools:\n- name: data\n  kind: path\n  path: %s\n  capacity: 40Mi\n", data)
	p := testutil.StartPlugin(t, testutil.BuildPlugin(t), testutil.PluginOptions{
		Endpoint: filepath.Join(dir, "csi.sock"), NodeID: "n", StateDir: filepath.Join(dir, "state"),
		ConfigPath: testutil.WriteConfig(t, dir, cfg), Args: []string{"--metrics-address", addr, "--health-interval", "200ms"},
	})
	e := &env{t: t, dir: dir, p: p}
	id := e.create("small", 4*mib, nil).GetVolumeId()
	status := func() string {
		out, err := exec.Command(testutil.BuildPlugin(t), "status", "--endpoint", p.Address()).CombinedOutput()
		if err != nil {
			t.Fatalf("status: %v\n%s", err, out)
		}
		return string(out)
	}
	if s := status(); strings.Contains(s, "OVERUSED") {
		t.Fatalf("a pool within its allocation is reported overused:\n%s", s)
	}
	e.must(os.WriteFile(filepath.Join(data, "localdisk", "volumes", id, "big"), make([]byte, 6*mib), 0o644))
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(status(), "OVERUSED") {
		if time.Now().After(deadline) {
			t.Fatalf("status never said OVERUSED after a 4 MiB volume got 6 MiB:\n%s", status())
		}
		time.Sleep(100 * time.Millisecond)
	}
	body := scrape(t, addr)
	used, allocated := metric(t, string(body), `localdisk_pool_used_bytes{kind="path",pool="data"}`), metric(t, string(body), `localdisk_pool_allocated_bytes{kind="path",pool="data"}`)
	if used <= allocated || allocated != 4*mib {
		t.Errorf("metrics: used %v, allocated %v; want used above the 4 MiB allocated", used, allocated)
	}
	if got := e.health(id); !slices.Equal(got, []string{"DEGRADED/OverCapacity"}) {
		t.Errorf("health of the volume that wrote past its size: %v", got)
	}
}

// metric is the value of the sample named exactly series in a scrape.
func metric(t *testing.T, text, series string) float64 {
	t.Helper()
	for _, l := range strings.Split(text, "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatalf("no %s in the scrape", series)
	return 0
}
