package node

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/localdisk-csi/localdisk/driver/mounter/fakemounter"
	"github.com/localdisk-csi/localdisk/driver/mounts"
	"github.com/localdisk-csi/localdisk/driver/pool"
	"github.com/localdisk-csi/localdisk/driver/volume"
	"github.com/localdisk-csi/localdisk/driver/volume/volumetest"
)

// FuzzNode: random volume IDs, staging and target paths, access modes and
// read-only flags never make the node service panic or answer INTERNAL,
// and a request that fails creates nothing. Absolute paths are confined
// below one sandbox directory, relative ones to the working directory (set
// to another), so that nothing outside is ever touched; no request here
// reaches a mount (the one known volume is never staged), and the mounts
// are fakemounter's, so that it runs without root.
func FuzzNode(f *testing.F) {
	base := f.TempDir()
	abs, rel := filepath.Join(base, "abs"), filepath.Join(base, "rel")
	cwd := filepath.Join(rel, "cwd")
	for _, d := range []string{abs, cwd} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			f.Fatal(err)
		}
	}
	f.Chdir(cwd)
	m := volumetest.RootManager(f, base, 1<<30)
	known, err := m.Create(context.Background(), volume.CreateRequest{Name: "known", Required: pool.MiB})
	if err != nil {
		f.Fatal(err)
	}
	s := &Server{Mounts: mounts.New(m, fakemounter.New()), Volumes: m, NodeID: "n1", TopologyKey: "k"}

	f.Add(byte(1), "x", "/st", "/tg", false, int32(1))
	f.Add(byte(1), "", "rel/st", "rel/tg", true, int32(1))
	f.Add(byte(0), "../x", "/st\x00", "/a/b/c/\x00/tg", false, int32(5))
	f.Add(byte(1), "x", "/st", "/"+strings.Repeat("y", 300)+"/tg", false, int32(1))
	f.Add(byte(0), "\x00", "//", "/./.", true, int32(0))
	f.Add(byte(1), "x", "/st", "/nul\x00/tg", false, int32(1))
	f.Add(byte(1), "x", "/st", "/tg\x00", false, int32(1))
	f.Add(byte(1), "x", "/st", "../cwd2/tg", false, int32(7))
	f.Fuzz(func(t *testing.T, sel byte, id, staging, target string, ro bool, mode int32) {
		if sel%2 == 1 {
			id = known.ID
		}
		var ok bool
		if staging, ok = confine(staging, abs, cwd, rel); !ok {
			t.Skip()
		}
		if target, ok = confine(target, abs, cwd, rel); !ok {
			t.Skip()
		}
		ctx := context.Background()
		c := &csi.VolumeCapability{AccessType: &csi.VolumeCapability_Mount{Mount: &csi.VolumeCapability_MountVolume{}},
			AccessMode: &csi.VolumeCapability_AccessMode{Mode: csi.VolumeCapability_AccessMode_Mode(mode)}}
		check := func(what string, err error) {
			t.Helper()
			switch status.Code(err) {
			case codes.Internal, codes.Unknown, codes.Unavailable, codes.DeadlineExceeded:
				t.Errorf("%s(id %q, staging %q, target %q): %v", what, id, staging, target, err)
			}
			if err != nil {
				litter(t, what, abs, rel, cwd)
			}
		}
		if id != known.ID { // staging the known volume would mount it
			_, err := s.NodeStageVolume(ctx, &csi.NodeStageVolumeRequest{VolumeId: id, StagingTargetPath: staging, VolumeCapability: c})
			check("NodeStageVolume", err)
		}
		_, err := s.NodePublishVolume(ctx, &csi.NodePublishVolumeRequest{VolumeId: id, StagingTargetPath: staging,
			TargetPath: target, VolumeCapability: c, Readonly: ro})
		check("NodePublishVolume", err)
		_, err = s.NodeGetVolumeStats(ctx, &csi.NodeGetVolumeStatsRequest{VolumeId: id, VolumePath: target})
		check("NodeGetVolumeStats", err)
		_, err = s.NodeExpandVolume(ctx, &csi.NodeExpandVolumeRequest{VolumeId: id, VolumePath: target})
		check("NodeExpandVolume", err)
		_, err = s.NodeGetVolumeHealth(ctx, &csi.NodeGetVolumeHealthRequest{VolumeId: id})
		check("NodeGetVolumeHealth", err)
		_, err = s.NodeUnpublishVolume(ctx, &csi.NodeUnpublishVolumeRequest{VolumeId: id, TargetPath: target})
		check("NodeUnpublishVolume", err)
		_, err = s.NodeUnstageVolume(ctx, &csi.NodeUnstageVolumeRequest{VolumeId: id, StagingTargetPath: staging})
		check("NodeUnstageVolume", err)
		litter(t, "the requests", abs, rel, cwd)
	})
}

// confine maps an absolute path below abs (by prefixing it) and keeps a
// relative one, which the plugin resolves against cwd, if it stays below
// rel; ok is false for a path that would leave its sandbox.
func confine(p, abs, cwd, rel string) (string, bool) {
	if filepath.IsAbs(p) {
		p = abs + p
		return p, within(filepath.Clean(p), abs)
	}
	return p, p == "" || within(filepath.Join(cwd, p), rel)
}

func within(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }

// litter fails the test if anything but the working directory exists in
// the sandboxes, and removes it.
func litter(t *testing.T, what, abs, rel, cwd string) {
	t.Helper()
	for _, root := range []string{abs, rel} {
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || p == root || p == cwd {
				return nil
			}
			t.Errorf("%s left %s behind", what, p)
			os.RemoveAll(p)
			return fs.SkipDir
		})
	}
}
