package hostile

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"

	"github.com/localdisk-csi/localdisk/test/testutil"
)

// hostileNames are CreateVolume names built to escape or confuse.
var hostileNames = []string{
	"A", "a", "../../../outside/keep", "/etc/passwd", "a/../../b", ".", "..", "-", "x\x00y",
	"ctl\x01\x1b[2J\n\r\t", "\u202egnp.exe", " ", "root-0123", strings.Repeat("é", 300),
	strings.Repeat("n", 1<<20),
}

// TestNames_Opaque: names are opaque: each gets its own volume with a valid
// ID (never derived as a path), `A` and `a` are two volumes, a retry gets
// the same one, and the name is kept exactly.
func TestNames_Opaque(t *testing.T) {
	e := newEnv(t)
	for _, kind := range []string{"root", "path"} {
		t.Run(kind, func(t *testing.T) {
			e := e.sub(t)
			ids := map[string]string{}
			for _, name := range hostileNames {
				v, err := e.Create(name, testutil.MiB, map[string]string{"pool": poolOf[kind]})
				if err != nil {
					wantCode(t, err, "CreateVolume "+short(name), codes.InvalidArgument)
					continue
				}
				id := v.GetVolumeId()
				if !idRE.MatchString(id) {
					t.Errorf("name %s got ID %q", short(name), id)
				}
				for other, oid := range ids {
					if oid == id {
						t.Errorf("names %s and %s share volume %s", short(name), short(other), id)
					}
				}
				ids[name] = id
				if again, err := e.Create(name, testutil.MiB, map[string]string{"pool": poolOf[kind]}); err != nil || again.GetVolumeId() != id {
					t.Errorf("retry of %s: %v, %v", short(name), again.GetVolumeId(), err)
				}
			}
			if ids["A"] == "" || ids["a"] == "" {
				t.Errorf("A and a must be two volumes: %q %q", ids["A"], ids["a"])
			}
			kept := map[string]string{}
			for _, r := range e.Records() {
				kept[r.Name] = r.ID
			}
			for name, id := range ids {
				if kept[name] != id {
					t.Errorf("name %s not kept exactly in its record (volume %s)", short(name), id)
				}
			}
			e.CheckConverged()
			for _, id := range ids {
				e.Must(e.Delete(id), "delete")
			}
			e.CheckConverged()
		})
	}
	// MOUNT: two disks, two names differing in case only.
	a := e.MustCreate("A", 0, map[string]string{"pool": testutil.MountPool}).GetVolumeId()
	b := e.MustCreate("a", 0, map[string]string{"pool": testutil.MountPool}).GetVolumeId()
	if a == b {
		t.Errorf("MOUNT: A and a are one volume %s", a)
	}
	e.CheckConverged()
	e.Must(e.Delete(a), "delete")
	e.Must(e.Delete(b), "delete")
}

func short(s string) string {
	if len(s) > 40 {
		return strings.ToValidUTF8(s[:40], "?") + "...(" + strconv.Itoa(len(s)) + " bytes)"
	}
	return "\"" + strings.ToValidUTF8(s, "?") + "\""
}

// TestIDs_Hostile: every RPC that takes a volume ID answers a hostile one
// with NOT_FOUND or INVALID_ARGUMENT (or OK where an unknown volume is
// success), never INTERNAL, and touches nothing.
func TestIDs_Hostile(t *testing.T) {
	e := newEnv(t)
	canary := e.published("canary", "root")
	mounts := testutil.Mounts(t, e.Dir)
	c := canary.id
	for _, id := range []string{"..", ".", "../", "../../", "/", "/etc", c + "/..", c + "/../" + c, "../" + c,
		c + "\x00", strings.ToUpper(c), c + " ", c + "/", "./" + c, "root-../../outside", "\x00", "a\nb",
		strings.Repeat("a", 129), strings.Repeat("a", 1<<20), "../../outside/keep"} {
		name := short(id)
		staging, target := e.Paths("h")
		ctx, cancel := e.Ctx()
		wantCode(t, e.Delete(id), "DeleteVolume "+name, codes.OK, codes.NotFound, codes.InvalidArgument)
		wantCode(t, e.Stage(id, staging), "NodeStageVolume "+name, codes.NotFound, codes.InvalidArgument)
		wantCode(t, e.Publish(id, canary.staging, target, false), "NodePublishVolume "+name, codes.NotFound, codes.InvalidArgument)
		wantCode(t, e.Unpublish(id, target), "NodeUnpublishVolume "+name, codes.OK, codes.NotFound, codes.InvalidArgument)
		wantCode(t, e.Unstage(id, staging), "NodeUnstageVolume "+name, codes.OK, codes.NotFound, codes.InvalidArgument)
		_, err := e.P.Node().NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: id, VolumePath: canary.target})
		wantCode(t, err, "NodeGetVolumeStats "+name, codes.NotFound, codes.InvalidArgument)
		_, err = e.P.Node().NodeGetVolumeHealth(ctx, &csi.NodeGetVolumeHealthRequest{VolumeId: id})
		wantCode(t, err, "NodeGetVolumeHealth "+name, codes.NotFound, codes.InvalidArgument)
		_, err = e.P.Controller().ValidateVolumeCapabilities(ctx, &csi.ValidateVolumeCapabilitiesRequest{
			VolumeId: id, VolumeCapabilities: []*csi.VolumeCapability{testutil.RWO}})
		wantCode(t, err, "ValidateVolumeCapabilities "+name, codes.NotFound, codes.InvalidArgument)
		_, err = e.P.Controller().ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{
			VolumeId: id, CapacityRange: &csi.CapacityRange{RequiredBytes: 2 * testutil.MiB}})
		wantCode(t, err, "ControllerExpandVolume "+name, codes.NotFound, codes.InvalidArgument)
		cancel()
	}
	if got := testutil.Mounts(t, e.Dir); !slices.Equal(got, mounts) {
		t.Errorf("mounts changed: %q, want %q", got, mounts)
	}
	if vols := e.CheckConverged(); vols[c] == nil {
		t.Errorf("canary %s lost", c)
	}
	e.teardown(canary)
}

// TestParameters_Hostile: unknown or escaping parameters are
// INVALID_ARGUMENT for CreateVolume and a zero capacity for GetCapacity;
// the csi.storage.k8s.io/ ones are ignored whatever they hold.
func TestParameters_Hostile(t *testing.T) {
	e := newEnv(t)
	for _, p := range []map[string]string{
		{"pool": "../root"}, {"pool": "root/../data"}, {"pool": ""}, {"pool": "root\x00"}, {"pool": "ROOT"},
		{"kind": "ROOT"}, {"kind": "../root"}, {"kind": ""}, {"unknown": "x"}, {"": ""}, {"Pool": "root"},
		{"pool": strings.Repeat("p", 1<<20)}, {strings.Repeat("k", 1<<20): "v"}, {"pool": "root", "kind": "path"},
		{"csi.storage.k8s.io/../pool": "x", "pool": "nope"},
	} {
		name := "p" + strconv.Itoa(len(p)) + short(keys(p))
		_, err := e.Create(name, testutil.MiB, p)
		wantCode(t, err, "CreateVolume with parameters "+short(keys(p)), codes.InvalidArgument)
		ctx, cancel := e.Ctx()
		r, err := e.P.Controller().GetCapacity(ctx, &csi.GetCapacityRequest{Parameters: p})
		cancel()
		if err != nil || r.GetAvailableCapacity() != 0 {
			t.Errorf("GetCapacity with parameters %s: %v, %v; want 0", short(keys(p)), r, err)
		}
	}
	ignored := map[string]string{"csi.storage.k8s.io/pvc/name": "../../outside", "csi.storage.k8s.io/pvc/namespace": "\x00/..",
		"csi.storage.k8s.io/pv/name": strings.Repeat("x", 4096), "pool": testutil.RootPool}
	v := e.MustCreate("ignored", testutil.MiB, ignored)
	if ctx := v.GetVolumeContext(); ctx["pool"] != testutil.RootPool || len(ctx) != 2 {
		t.Errorf("volume_context %v", ctx)
	}
	// Hostile volume_context values on the node side are ignored.
	staging, target := e.Paths("ignored")
	ctx, cancel := e.Ctx()
	defer cancel()
	hostile := map[string]string{"pool": "../../outside", "kind": "mount", "path": e.outside, "id": "../x"}
	_, err := e.P.Node().NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: v.GetVolumeId(),
		StagingTargetPath: staging, VolumeCapability: testutil.RWO, VolumeContext: hostile})
	e.Must(err, "stage with a hostile volume_context")
	_, err = e.P.Node().NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: v.GetVolumeId(),
		StagingTargetPath: staging, TargetPath: target, VolumeCapability: testutil.RWO, VolumeContext: hostile})
	e.Must(err, "publish with a hostile volume_context")
	e.teardown(vol{v.GetVolumeId(), staging, target})
	e.CheckConverged()
}

func keys(m map[string]string) string {
	var ks []string
	for k, v := range m {
		ks = append(ks, k+"="+v)
	}
	return strings.Join(ks, ",")
}

// TestMountGroup_Hostile: a volume_mount_group that is not a plain group
// number is INVALID_ARGUMENT and changes nothing; a valid one changes the
// group of the volume's root only.
func TestMountGroup_Hostile(t *testing.T) {
	e := newEnv(t)
	id := e.MustCreate("group", testutil.MiB, map[string]string{"pool": testutil.RootPool}).GetVolumeId()
	staging, target := e.Paths("group")
	e.Must(os.MkdirAll(filepath.Join(e.dataDir("root", id), "sub"), 0o755), "mkdir")
	capWith := func(g string) *csi.VolumeCapability {
		c := testutil.MountCap(csi.VolumeCapability_AccessMode_SINGLE_NODE_WRITER)
		c.GetMount().VolumeMountGroup = g
		return c
	}
	ctx, cancel := e.Ctx()
	defer cancel()
	for _, g := range []string{"-1", "abc", "4294967295", "2147483648", "1e3", " 1", "0x10", "1\x00", "../0", strings.Repeat("9", 1<<20)} {
		_, err := e.P.Node().NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: id, StagingTargetPath: staging, VolumeCapability: capWith(g)})
		wantCode(t, err, "stage with volume_mount_group "+short(g), codes.InvalidArgument)
	}
	if got := testutil.Mounts(t, staging); len(got) != 0 {
		t.Errorf("mounted for an invalid volume_mount_group: %q", got)
	}
	_, err := e.P.Node().NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: id, StagingTargetPath: staging, VolumeCapability: capWith("4242")})
	e.Must(err, "stage with a valid volume_mount_group")
	_, err = e.P.Node().NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: id, StagingTargetPath: staging,
		TargetPath: target, VolumeCapability: capWith("4242")})
	e.Must(err, "publish with a valid volume_mount_group")
	for p, want := range map[string]uint32{e.dataDir("root", id): 4242, filepath.Join(e.dataDir("root", id), "sub"): 0} {
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil || st.Gid != want {
			t.Errorf("%s: group %d (%v), want %d (the root only, never recursive)", p, st.Gid, err, want)
		}
	}
	e.teardown(vol{id, staging, target})
}
