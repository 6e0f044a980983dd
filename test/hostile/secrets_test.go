package hostile

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/localdisk-csi/localdisk/test/testutil"
)

// TestSecrets_NeverLoggedOrPersisted: secrets, and the service account
// tokens Kubernetes passes in volume_context, reach every RPC that carries
// them; none appears in the plugin's (debug) log, its state directory or
// its pools.
func TestSecrets_NeverLoggedOrPersisted(t *testing.T) {
	e := newEnv(t)
	secret := func(n string) string { return "s3cr3t-" + n + "-8f2c1e" }
	tokens := `{"audience":{"token":"` + secret("token") + `","expirationTimestamp":"2030-01-01T00:00:00Z"}}`
	secrets := map[string]string{"password": secret("password"), "token": secret("secretmap")}
	vctx := map[string]string{"csi.storage.k8s.io/serviceAccount.tokens": tokens,
		"csi.storage.k8s.io/pod.name": "p", "pool": testutil.RootPool}
	ctx, cancel := e.Ctx()
	defer cancel()
	params := map[string]string{"pool": testutil.RootPool, "csi.storage.k8s.io/serviceAccount.tokens": tokens}
	r, err := e.P.Controller().CreateVolume(ctx, &csi.CreateVolumeRequest{Name: "with-secrets", Parameters: params,
		VolumeCapabilities: []*csi.VolumeCapability{testutil.RWO}, Secrets: secrets,
		CapacityRange: &csi.CapacityRange{RequiredBytes: testutil.MiB}})
	e.Must(err, "create")
	id := r.GetVolume().GetVolumeId()
	for k, v := range r.GetVolume().GetVolumeContext() {
		if strings.Contains(k+v, "s3cr3t") {
			t.Errorf("volume_context returned by CreateVolume holds a secret: %s", k)
		}
	}
	staging, target := e.Paths("with-secrets")
	caps := []*csi.VolumeCapability{testutil.RWO}
	calls := []func() error{
		func() error {
			_, err := e.P.Controller().ValidateVolumeCapabilities(ctx, &csi.ValidateVolumeCapabilitiesRequest{
				VolumeId: id, VolumeCapabilities: caps, VolumeContext: vctx, Secrets: secrets})
			return err
		},
		func() error {
			_, err := e.P.Controller().ControllerExpandVolume(ctx, &csi.ControllerExpandVolumeRequest{VolumeId: id,
				CapacityRange: &csi.CapacityRange{RequiredBytes: 2 * testutil.MiB}, Secrets: secrets})
			return err
		},
		func() error {
			_, err := e.P.Node().NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: id, StagingTargetPath: staging,
				VolumeCapability: testutil.RWO, VolumeContext: vctx, Secrets: secrets})
			return err
		},
		func() error {
			_, err := e.P.Node().NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: id, StagingTargetPath: staging,
				TargetPath: target, VolumeCapability: testutil.RWO, VolumeContext: vctx, Secrets: secrets})
			return err
		},
		func() error {
			_, err := e.P.Node().NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: id, VolumePath: target})
			return err
		},
		func() error { return e.Unpublish(id, target) },
		func() error { return e.Unstage(id, staging) },
		func() error {
			// A failing call logs its request too.
			_, err := e.P.Node().NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: id, StagingTargetPath: staging,
				TargetPath: "rel", VolumeCapability: testutil.RWO, VolumeContext: vctx, Secrets: secrets})
			if err == nil {
				t.Error("publish to a relative path succeeded")
			}
			return nil
		},
	}
	for i, call := range calls {
		if err := call(); err != nil {
			t.Errorf("call %d: %v", i, err)
		}
	}
	e.P.Stop() // flush everything
	if leaks := testutil.GrepLog(e.P.Log(), "s3cr3t", "8f2c1e"); len(leaks) > 0 {
		t.Errorf("the plugin logged secrets:\n%s", strings.Join(leaks, "\n"))
	}
	for _, dir := range []string{e.StateDir, e.RootDir} {
		for _, f := range testutil.FilesBelow(t, dir) {
			if strings.Contains(f, "s3cr3t") || strings.Contains(f, "8f2c1e") {
				t.Errorf("a secret was persisted under %s: %.200s", dir, f)
			}
		}
	}
	e.P.Restart()
	e.Must(e.Delete(id), "delete")
}

// TestPermissions: socket 0600, state directory and records directory
// 0700, records 0600; the pools' data, volumes and trash directories are
// writable by their owner only; all even when the plugin runs with umask 0.
func TestPermissions(t *testing.T) {
	old := syscall.Umask(0)
	e := newEnv(t)
	syscall.Umask(old)
	v := e.published("perm", "root")
	defer e.teardown(v)
	pv := e.MustCreate("perm-path", testutil.MiB, map[string]string{"pool": testutil.PathPool}).GetVolumeId()
	defer e.Delete(pv)
	want := func(p string, perm fs.FileMode) {
		t.Helper()
		fi, err := os.Lstat(p)
		if err != nil {
			t.Errorf("%s: %v", p, err)
		} else if got := fi.Mode().Perm(); got != perm {
			t.Errorf("%s has mode %v, want %v", p, got, perm)
		}
	}
	notGroupWorldWritable := func(p string) {
		t.Helper()
		if fi, err := os.Lstat(p); err != nil || fi.Mode().Perm()&0o022 != 0 {
			t.Errorf("%s is group- or world-writable (or missing): %v %v", p, fi.Mode(), err)
		}
	}
	want(e.P.Options().Endpoint, 0o600)
	want(e.StateDir, 0o700)
	want(e.RecordsDir(), 0o700)
	for _, dir := range []string{e.RecordsDir(), filepath.Join(e.StateDir, "pools")} {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Errorf("%s: %v", dir, err)
		}
		for _, ent := range ents {
			want(filepath.Join(dir, ent.Name()), 0o600)
		}
	}
	for _, pool := range []string{e.RootDir, e.PathDisk} {
		notGroupWorldWritable(pool)
		for _, d := range []string{"localdisk", "localdisk/volumes", "localdisk/trash"} {
			notGroupWorldWritable(filepath.Join(pool, d))
		}
		for _, f := range []string{"localdisk/pool.json"} {
			notGroupWorldWritable(filepath.Join(pool, f))
		}
		vols, _ := e.PoolDirs(map[string]string{e.RootDir: testutil.RootPool, e.PathDisk: testutil.PathPool}[pool])
		for _, v := range vols {
			notGroupWorldWritable(filepath.Join(pool, "localdisk", "volumes", v))
		}
	}
}
