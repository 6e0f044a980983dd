package layout_test

import (
	"strings"
	"testing"

	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/state"
)

// The golden IDs below were computed by the code this package replaced
// (driver/volume's dirVolumeID, driver/pool's DiskID, ClaimID and slug) and
// are the IDs of volumes that exist on nodes and in COs: a volume ID never
// changes across versions. A failure here is a breaking change of the
// on-disk format, never a golden file to update.

var (
	longPool = strings.Repeat("p", 32) // pool.MaxNameLen
	longPath = "/" + strings.Repeat("x/", 200)
)

var goldenDirIDs = []struct{ pool, name, want string }{
	{"root", "pvc-1", "root-f2868e1aa7cab669517cd9f5ab1b7957"},
	{"data", "pvc-0b7e3f3c-6d4e-4b8a-9f0a-1c2d3e4f5a6b", "data-e507ba1c678a8b1144edf0c3336ca002"},
	{"r", "", "r-e3b0c44298fc1c149afbf4c8996fb924"},
	{"p", "名前 with spaces\n", "p-36149902d4f89870a549e0de1d6890a4"},
	{"bench", "populated-000001", "bench-8abc7b5d639520526d98f3d32a011838"},
	{longPool, "x", "pppppppppppppppppppppppppppppppp-2d711642b726b04401627ca9fbac32f5"},
	{"path-mnt-data", "vol", "path-mnt-data-b9f6da279ec59af95d121d1e1e502ecf"},
}

var goldenDiskIDs = []struct{ pool, path, want string }{
	{"disks", "/mnt/d1", "disks-mnt-d1"},
	{"mount", "/mnt/disk1", "mount-mnt-disk1"},
	{"d", "/mnt/my-disk", "d-mnt-my-disk--845ee6aa"},
	{"d", "/mnt/my/disk", "d-mnt-my-disk"},
	{"d", "/mnt/Data", "d-mnt-data--86722dc0"},
	{"d", "/mnt/data", "d-mnt-data"},
	{"devs", "/dev/loop0", "devs-dev-loop0"},
	{"devs", "/dev/disk/by-id/wwn-0x5000c500a1b2c3d4", "devs-dev-disk-by-id-wwn-0x5000c500a1b2c3d4--92b2646d"},
	{"d", longPath, "d-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x--f44ae788"},
	{longPool, longPath, "pppppppppppppppppppppppppppppppp-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x--f44ae788"},
	{"d", "/", "d-"},
	{"d", "rel/x", "d-rel-x--29a7f2ad"},
	{"d", "/mnt/a--b", "d-mnt-a-b--3dfcb5f8"},
	{"d", "/mnt/a_b", "d-mnt-a-b--96644c54"},
	{"d", "/dcos/volume0", "d-dcos-volume0"},
	{"d", "/Über/ü", "d-ber--bb389bd7"},
}

var goldenClaimIDs = []struct{ disk, name, want string }{
	{"disks-mnt-d1", "pvc-1", "disks-mnt-d1_f2868e1aa7cab669"},
	{"disks-mnt-d1", "", "disks-mnt-d1_e3b0c44298fc1c14"},
	{"disks-mnt-d1", "pvc-2", "disks-mnt-d1_02309f4c8f81004f"},
	{"d-mnt-my-disk--845ee6aa", "pvc-1", "d-mnt-my-disk--845ee6aa_f2868e1aa7cab669"},
	{"d-mnt-my-disk--845ee6aa", "", "d-mnt-my-disk--845ee6aa_e3b0c44298fc1c14"},
	{"d-mnt-my-disk--845ee6aa", "pvc-2", "d-mnt-my-disk--845ee6aa_02309f4c8f81004f"},
	{"devs-dev-disk-by-id-wwn-0x5000c500a1b2c3d4--92b2646d", "pvc-1", "devs-dev-disk-by-id-wwn-0x5000c500a1b2c3d4--92b2646d_f2868e1aa7cab669"},
	{"devs-dev-disk-by-id-wwn-0x5000c500a1b2c3d4--92b2646d", "", "devs-dev-disk-by-id-wwn-0x5000c500a1b2c3d4--92b2646d_e3b0c44298fc1c14"},
	{"devs-dev-disk-by-id-wwn-0x5000c500a1b2c3d4--92b2646d", "pvc-2", "devs-dev-disk-by-id-wwn-0x5000c500a1b2c3d4--92b2646d_02309f4c8f81004f"},
	{"pppppppppppppppppppppppppppppppp-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x--f44ae788", "pvc-1", "pppppppppppppppppppppppppppppppp-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x--f44ae788_f2868e1aa7cab669"},
	{"pppppppppppppppppppppppppppppppp-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x--f44ae788", "", "pppppppppppppppppppppppppppppppp-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x--f44ae788_e3b0c44298fc1c14"},
	{"pppppppppppppppppppppppppppppppp-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x--f44ae788", "pvc-2", "pppppppppppppppppppppppppppppppp-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x-x--f44ae788_02309f4c8f81004f"},
	{"d-", "pvc-1", "d-_f2868e1aa7cab669"},
	{"d-", "", "d-_e3b0c44298fc1c14"},
	{"d-", "pvc-2", "d-_02309f4c8f81004f"},
}

// goldenSlugs are slugs of Mesos PATH roots at the length of a Mesos PATH
// pool's name ("path-" and 27 bytes), which prefix its volume IDs.
var goldenSlugs = []struct {
	path string
	max  int
	want string
}{
	{"/mnt/data", 27, "mnt-data"},
	{"/mnt/a-b", 27, "mnt-a-b--6471c557"},
	{"/mnt/a/b", 27, "mnt-a-b"},
	{"/" + strings.TrimSuffix(strings.Repeat("abc/", 20), "/"), 27, "abc-abc-abc-abc-a--ece52fca"},
	{"/var/lib/mesos/volumes/Data_1", 27, "var-lib-mesos-vol--1a111782"},
	{"/", 27, ""},
	{"rel", 27, "rel--68b076be"},
}

func TestDirVolumeIDGolden(t *testing.T) {
	for _, g := range goldenDirIDs {
		if got := layout.DirVolumeID(g.pool, g.name); got != g.want {
			t.Errorf("DirVolumeID(%q, %q) = %q, want %q (existing volumes would lose their IDs)", g.pool, g.name, got, g.want)
		}
		if !state.ValidID(g.want) {
			t.Errorf("DirVolumeID(%q, %q) = %q: not a valid volume ID", g.pool, g.name, g.want)
		}
	}
}

func TestDiskIDGolden(t *testing.T) {
	for _, g := range goldenDiskIDs {
		got := layout.DiskID(g.pool, g.path)
		if got != g.want {
			t.Errorf("DiskID(%q, %q) = %q, want %q (existing volumes would lose their IDs)", g.pool, g.path, got, g.want)
		}
		if layout.DiskOf(got) != got {
			t.Errorf("DiskOf(%q) = %q, want the disk ID itself", got, layout.DiskOf(got))
		}
		if !state.ValidID(got) {
			t.Errorf("DiskID(%q, %q) = %q: not a valid volume ID", g.pool, g.path, got)
		}
	}
}

func TestClaimIDGolden(t *testing.T) {
	for _, g := range goldenClaimIDs {
		got := layout.ClaimID(g.disk, g.name)
		if got != g.want {
			t.Errorf("ClaimID(%q, %q) = %q, want %q (existing volumes would lose their IDs)", g.disk, g.name, got, g.want)
		}
		if !state.ValidID(got) {
			t.Errorf("ClaimID(%q, %q) = %q: not a valid volume ID", g.disk, g.name, got)
		}
		if d := layout.DiskOf(got); d != g.disk {
			t.Errorf("DiskOf(%q) = %q, want %q", got, d, g.disk)
		}
	}
}

func TestSlugGolden(t *testing.T) {
	for _, g := range goldenSlugs {
		got := layout.Slug(g.path, g.max)
		if got != g.want {
			t.Errorf("Slug(%q, %d) = %q, want %q", g.path, g.max, got, g.want)
		}
		if len(got) > g.max {
			t.Errorf("Slug(%q, %d) = %q: longer than %d", g.path, g.max, got, g.max)
		}
	}
}

// A disk's claims: one ID per name, each naming its disk, never another
// disk's ID; and distinct paths never share a disk ID.
func TestClaims(t *testing.T) {
	disks := map[string]string{}
	for _, p := range []string{"/mnt/d1", "/mnt/d_1", "/mnt/D1", "/mnt/d-1", "/mnt/d/1", "/mnt/d1/", "/mnt//d1", longPath, longPath + "y"} {
		d := layout.DiskID("disks", p)
		if other, dup := disks[d]; dup {
			t.Errorf("paths %q and %q share the disk ID %q", other, p, d)
		}
		disks[d] = p
		if strings.ContainsRune(d, '_') {
			t.Errorf("DiskID(%q) = %q holds the claim separator", p, d)
		}
		a, b := layout.ClaimID(d, "pvc-1"), layout.ClaimID(d, "pvc-2")
		if a == b || a != layout.ClaimID(d, "pvc-1") || a == d {
			t.Errorf("ClaimID(%q): %q and %q for two names, want distinct, stable and not the disk's", d, a, b)
		}
		for _, id := range []string{a, b} {
			if !state.ValidID(id) || layout.DiskOf(id) != d {
				t.Errorf("ID %q: valid %v, disk %q; want valid, disk %q", id, state.ValidID(id), layout.DiskOf(id), d)
			}
		}
	}
}
