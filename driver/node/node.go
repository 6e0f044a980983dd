// Package node serves the CSI Node service: staging binds the volume's
// directory at the staging path (a MOUNT disk given by path: its staging
// mark, see volume.Volume.WholeDisk), publishing binds the staging mount at
// the target (that disk: the disk's root). Every decision about what is mounted where comes from one
// /proc/self/mountinfo snapshot taken under the volume's and path's locks, so
// repeated calls stack nothing and conflicting ones fail cleanly.
package node

import (
	"cmp"
	"context"
	"errors"
	"github.com/moby/sys/mountinfo"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"

	"github.com/localdisk-csi/localdisk/driver/csiutil"
	"github.com/localdisk-csi/localdisk/driver/failpoint"
	"github.com/localdisk-csi/localdisk/driver/mounter"
	"github.com/localdisk-csi/localdisk/driver/volume"
)

// Server is the node service.
type Server struct {
	csi.UnimplementedNodeServer
	Volumes     *volume.Manager
	NodeID      string
	TopologyKey string
	// MaxVolumes is reported as max_volumes_per_node (0: no limit).
	MaxVolumes int64
}

var _ csi.NodeServer = (*Server)(nil)

// NodeGetCapabilities: stage/unstage, stats, volume health, expansion,
// volume mount groups and the single-node multi-writer access modes.
func (s *Server) NodeGetCapabilities(context.Context, *csi.NodeGetCapabilitiesRequest) (*csi.NodeGetCapabilitiesResponse, error) {
	var out []*csi.NodeServiceCapability
	for _, t := range []csi.NodeServiceCapability_RPC_Type{
		csi.NodeServiceCapability_RPC_STAGE_UNSTAGE_VOLUME,
		csi.NodeServiceCapability_RPC_GET_VOLUME_STATS,
		csi.NodeServiceCapability_RPC_GET_VOLUME_HEALTH,
		csi.NodeServiceCapability_RPC_SINGLE_NODE_MULTI_WRITER,
		csi.NodeServiceCapability_RPC_EXPAND_VOLUME,
		csi.NodeServiceCapability_RPC_VOLUME_MOUNT_GROUP,
	} {
		out = append(out, &csi.NodeServiceCapability{Type: &csi.NodeServiceCapability_Rpc{
			Rpc: &csi.NodeServiceCapability_RPC{Type: t}}})
	}
	return &csi.NodeGetCapabilitiesResponse{Capabilities: out}, nil
}

// NodeGetInfo: the node ID, its topology segment and the volume limit.
func (s *Server) NodeGetInfo(context.Context, *csi.NodeGetInfoRequest) (*csi.NodeGetInfoResponse, error) {
	return &csi.NodeGetInfoResponse{
		NodeId:             s.NodeID,
		MaxVolumesPerNode:  s.MaxVolumes,
		AccessibleTopology: &csi.Topology{Segments: csiutil.Segment(s.TopologyKey, s.NodeID)},
	}, nil
}

// NodeStageVolume bind-mounts the volume's directory (a whole disk: its
// mark) at the staging path
// (an existing empty directory, or one it creates).
func (s *Server) NodeStageVolume(ctx context.Context, req *csi.NodeStageVolumeRequest) (*csi.NodeStageVolumeResponse, error) {
	id, staging := req.GetVolumeId(), req.GetStagingTargetPath()
	if err := required(id, "volume_id", staging, "staging_target_path"); err != nil {
		return nil, err
	}
	if err := csiutil.CheckCapability(req.GetVolumeCapability()); err != nil {
		return nil, csiutil.Errorf(codes.InvalidArgument, "%v", err)
	}
	staging, err := s.canonical(staging, "staging_target_path")
	if err != nil {
		return nil, err
	}
	unlock, err := s.Volumes.Lock(ctx, volume.IDKey(id), volume.PathKey(staging))
	if err != nil {
		return nil, csiutil.ToStatus(err)
	}
	defer unlock()
	v, err := s.Volumes.Lookup(id)
	if err != nil {
		return nil, csiutil.ToStatus(err)
	}
	if err := checkServes(v, req.GetVolumeCapability()); err != nil {
		return nil, err
	}
	if v.Device() {
		if err := s.stageDevice(ctx, v, staging, req.GetVolumeCapability()); err != nil {
			return nil, err
		}
		return &csi.NodeStageVolumeResponse{}, nil
	}
	dir, err := s.Volumes.OpenDir(v)
	if err != nil {
		return nil, csiutil.ToStatus(err)
	}
	defer dir.Close()
	if err := applyMountGroup(dir, req.GetVolumeCapability()); err != nil {
		return nil, err
	}
	from := dir
	if v.WholeDisk() { // staged with its mark: see volume.Volume.WholeDisk
		if from, err = s.Volumes.StageMark(v); err != nil {
			return nil, csiutil.Errorf(codes.Internal, "stage volume %s: %v", id, err)
		}
		defer from.Close()
	}
	if !notMounted(staging) { // else nothing is there: no need for the mount table
		t, err := readTable()
		if err != nil {
			return nil, err
		}
		if e := t.At(staging); e != nil {
			staged, old, err := s.stagedBy(t, v, e)
			switch {
			case err != nil:
				return nil, err
			case staged:
				return &csi.NodeStageVolumeResponse{}, nil // staged already
			case !old:
				return nil, csiutil.Errorf(codes.FailedPrecondition, "something else is mounted at staging_target_path %s", staging)
			}
			// A whole disk staged before its mark: its publishes are mounts
			// of their own, so the old staging can be replaced.
			if err := unmountAll(staging); err != nil {
				return nil, err
			}
		}
	}
	if err := makeDir(staging); err != nil {
		return nil, err
	}
	if err := mounter.BindDir(from, staging, false); err != nil {
		return nil, csiutil.Errorf(codes.Internal, "stage volume %s: %v", id, err)
	}
	failpoint.Inject(failpoint.StageMounted)
	return &csi.NodeStageVolumeResponse{}, nil
}

// NodeUnstageVolume unmounts the staging path and keeps the directory.
func (s *Server) NodeUnstageVolume(ctx context.Context, req *csi.NodeUnstageVolumeRequest) (*csi.NodeUnstageVolumeResponse, error) {
	err := s.unmount(ctx, req.GetVolumeId(), req.GetStagingTargetPath(), "staging_target_path", func(string) error {
		failpoint.Inject(failpoint.UnstageUnmntd)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &csi.NodeUnstageVolumeResponse{}, nil
}

// NodePublishVolume bind-mounts the staging mount (a whole disk: the disk's
// root) at the target, which it
// creates; read-only when asked or when the access mode only reads.
func (s *Server) NodePublishVolume(ctx context.Context, req *csi.NodePublishVolumeRequest) (*csi.NodePublishVolumeResponse, error) {
	id, target, staging := req.GetVolumeId(), req.GetTargetPath(), req.GetStagingTargetPath()
	if err := required(id, "volume_id", target, "target_path"); err != nil {
		return nil, err
	}
	c := req.GetVolumeCapability()
	if err := csiutil.CheckCapability(c); err != nil {
		return nil, csiutil.Errorf(codes.InvalidArgument, "%v", err)
	}
	if staging == "" { // the CSI spec's code: STAGE_UNSTAGE_VOLUME is advertised
		return nil, csiutil.Errorf(codes.FailedPrecondition, "staging_target_path is missing: volumes are staged before they are published")
	}
	ro := req.GetReadonly() || csiutil.ReadOnlyMode(c)
	if err := checkPath(target, "target_path"); err != nil {
		return nil, err
	}
	if err := checkPath(staging, "staging_target_path"); err != nil {
		return nil, err
	}
	if _, err := s.Volumes.Lookup(id); err != nil { // NotFound before any path error
		return nil, csiutil.ToStatus(err)
	}
	// The CO makes the target's parent (CSI spec); the plugin makes the
	// target itself, and nothing else.
	target, err := s.canonical(target, "target_path")
	if err != nil {
		return nil, err
	}
	if staging, err = s.canonical(staging, "staging_target_path"); err != nil {
		return nil, err
	}
	unlock, err := s.Volumes.Lock(ctx, volume.IDKey(id), volume.PathKey(target))
	if err != nil {
		return nil, csiutil.ToStatus(err)
	}
	defer unlock()
	v, err := s.Volumes.Lookup(id)
	if err != nil {
		return nil, csiutil.ToStatus(err)
	}
	if err := checkServes(v, c); err != nil {
		return nil, err
	}
	if csiutil.IsBlock(c) {
		if err := s.publishBlock(v, target, ro, c); err != nil {
			return nil, err
		}
		return &csi.NodePublishVolumeResponse{}, nil
	}
	// The common case without the mount table: a directory volume staged
	// here (a mount of its directory), nothing yet at the target, and no
	// single-writer mode to check against the volume's other mounts.
	fast := !v.Device() && c.GetAccessMode().GetMode() != csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER &&
		notMounted(target) && stagedAt(staging, v.Path())
	if !fast {
		t, src, err := s.snapshot(v, false)
		if err != nil {
			return nil, err
		}
		if e := t.At(staging); e == nil {
			return nil, csiutil.Errorf(codes.FailedPrecondition, "volume %s is not staged at %s", id, staging)
		} else if staged, old, err := s.stagedBy(t, v, e); err != nil || !staged && !old {
			return nil, cmp.Or(err, csiutil.Errorf(codes.FailedPrecondition, "volume %s is not staged at %s", id, staging))
		}
		if done, err := mountedHere(t, target, "target_path", id, src, &ro); done || err != nil {
			return &csi.NodePublishVolumeResponse{}, err
		}
		if err := singleWriter(t, v.Path(), src, c, staging, target); err != nil {
			return nil, err
		}
	}
	// The group is for writers: a read-only publish (another pod reading
	// the volume) leaves the volume's ownership to those who write to it.
	if c.GetMount().GetVolumeMountGroup() != "" && !v.Device() && !ro {
		dir, err := s.Volumes.OpenDir(v)
		if err != nil {
			return nil, csiutil.ToStatus(err)
		}
		err = applyMountGroup(dir, c)
		dir.Close()
		if err != nil {
			return nil, err
		}
	}
	if err := makeDir(target); err != nil {
		return nil, err
	}
	if err := s.bindTarget(v, staging, target, ro); err != nil {
		return nil, err
	}
	failpoint.Inject(failpoint.PublishMounted)
	return &csi.NodePublishVolumeResponse{}, nil
}

// NodeUnpublishVolume unmounts the target (when it shows this volume, or
// the volume is unknown: see notAnother) and removes it. It never removes a target that still has something mounted or
// still holds files: it fails instead, so no data is ever deleted through it.
func (s *Server) NodeUnpublishVolume(ctx context.Context, req *csi.NodeUnpublishVolumeRequest) (*csi.NodeUnpublishVolumeResponse, error) {
	err := s.unmount(ctx, req.GetVolumeId(), req.GetTargetPath(), "target_path", func(target string) error {
		failpoint.Inject(failpoint.UnpublishUnmntd)
		if err := removeTarget(target); err != nil {
			return err
		}
		return s.releaseBlock(req.GetVolumeId())
	})
	if err != nil {
		return nil, err
	}
	return &csi.NodeUnpublishVolumeResponse{}, nil
}

// removeTarget removes an unmounted target: a directory (only if empty) or
// an empty regular file (a block target) or a symlink, never a file that
// holds data.
func removeTarget(target string) error {
	fi, err := os.Lstat(target)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return csiutil.Errorf(codes.Internal, "%v", err)
	}
	if fi.Mode().IsRegular() && fi.Size() > 0 || !fi.IsDir() && !fi.Mode().IsRegular() && fi.Mode().Type() != fs.ModeSymlink {
		return csiutil.Errorf(codes.FailedPrecondition, "target_path %s is a %v holding data, not what publish made: not removed", target, fi.Mode().Type())
	}
	err = os.Remove(target)
	switch {
	case err == nil || errors.Is(err, fs.ErrNotExist):
		return nil
	case errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST):
		return csiutil.Errorf(codes.FailedPrecondition, "target_path %s is a directory holding files, not what publish made: not removed", target)
	}
	return csiutil.Errorf(codes.Internal, "remove target_path %s: %v", target, err)
}

// unmount removes every mount at a CO path under the volume's and the path's
// locks, then calls then with the canonical path, still locked. A path whose
// parent is gone has nothing mounted: it is done.
func (s *Server) unmount(ctx context.Context, id, p, field string, then func(string) error) error {
	if err := required(id, "volume_id", p, field); err != nil {
		return err
	}
	if err := checkPath(p, field); err != nil {
		return err
	}
	p, err := mounter.Canonical(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return csiutil.Errorf(codes.InvalidArgument, "%s: %v", field, err)
	}
	if err := s.Volumes.Protected(p); err != nil {
		return csiutil.Errorf(codes.InvalidArgument, "%s: %v", field, err)
	}
	unlock, err := s.Volumes.Lock(ctx, volume.IDKey(id), volume.PathKey(p))
	if err != nil {
		return csiutil.ToStatus(err)
	}
	defer unlock()
	if err := s.notAnother(id, p, field); err != nil {
		return err
	}
	if err := unmountAll(p); err != nil {
		return err
	}
	return then(p)
}

// notAnother refuses to unmount at p a mount that is not volume id's when
// the volume is known and its mounts can be told (a CO mixing up its
// paths would otherwise take another volume from its pod). An unknown or
// deleted volume, or one whose disk cannot be found, is unmounted as asked,
// so that a CO can always clean up.
func (s *Server) notAnother(id, p, field string) error {
	v, err := s.Volumes.Lookup(id)
	if err != nil {
		return nil
	}
	// The common case without reading the mount table: the path is a bind
	// of the volume's directory.
	if dir := v.Path(); dir != "" && !v.Device() && sameInode(p, dir) {
		return nil
	}
	t, err := mounter.ReadTable()
	if err != nil {
		return nil
	}
	var stack []*mountinfo.Info // every mount at p, stacked ones too
	for _, e := range t {
		if e.Mountpoint == p {
			stack = append(stack, e)
		}
	}
	if len(stack) == 0 {
		return nil
	}
	srcs, ok := s.sources(t, v)
	if !ok {
		return nil
	}
	for _, src := range srcs {
		for _, e := range stack {
			if mounter.SourceOf(e) == src {
				return nil
			}
		}
	}
	return csiutil.Errorf(codes.FailedPrecondition, "%s %s holds another mount than volume %s's: not unmounted", field, p, id)
}

// required checks that each named value (pairs of value, field name) is set.
func required(pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i] == "" {
			return csiutil.Errorf(codes.InvalidArgument, "%s is missing", pairs[i+1])
		}
	}
	return nil
}

// checkPath rejects a CO path the kernel could never take: not absolute, a
// NUL byte, longer than PATH_MAX or with a name longer than NAME_MAX.
func checkPath(p, field string) error {
	if !filepath.IsAbs(p) || strings.IndexByte(p, 0) >= 0 || len(p) >= unix.PathMax {
		return csiutil.Errorf(codes.InvalidArgument, "%s must be an absolute path without NUL bytes, shorter than %d bytes", field, unix.PathMax)
	}
	for _, name := range strings.Split(p, "/") {
		if len(name) > unix.NAME_MAX {
			return csiutil.Errorf(codes.InvalidArgument, "%s has a name longer than %d bytes", field, unix.NAME_MAX)
		}
	}
	return nil
}

// canonical checks a CO path and resolves its parents' symlinks; a path
// inside what localdisk manages (pools' data, disks, state) is refused.
func (s *Server) canonical(p, field string) (string, error) {
	if err := checkPath(p, field); err != nil {
		return "", err
	}
	c, err := mounter.Canonical(p)
	if err != nil {
		return "", csiutil.Errorf(codes.InvalidArgument, "%s: %v", field, err)
	}
	if err := s.Volumes.Protected(c); err != nil {
		return "", csiutil.Errorf(codes.InvalidArgument, "%s: %v", field, err)
	}
	return c, nil
}

// snapshot reads the mount table and what a mount of the volume shows (its
// directory, its device's filesystem, or its device node if block).
func (s *Server) snapshot(v *volume.Volume, block bool) (mounter.Table, mounter.Source, error) {
	t, err := mounter.ReadTable()
	if err != nil {
		return nil, mounter.Source{}, csiutil.Errorf(codes.Internal, "%v", err)
	}
	src, err := s.Volumes.Source(t, v, block)
	if err != nil {
		return nil, mounter.Source{}, csiutil.ToStatus(err)
	}
	return t, src, nil
}

// mountedHere reports whether the volume is mounted at p already (a
// retried call: done), with the read-only flag asked for if ro is set; a
// mount of something else there, or with the other flag, is an error.
func mountedHere(t mounter.Table, p, field, id string, src mounter.Source, ro *bool) (done bool, err error) {
	e := t.At(p)
	switch {
	case e == nil:
		return false, nil
	case mounter.SourceOf(e) != src:
		return false, csiutil.Errorf(codes.FailedPrecondition, "something else is mounted at %s %s", field, p)
	case ro != nil && mounter.ReadOnly(e) != *ro:
		return false, csiutil.Errorf(codes.AlreadyExists, "volume %s is published at %s with readonly=%v", id, p, !*ro)
	}
	return true, nil
}

// singleWriter fails a SINGLE_NODE_SINGLE_WRITER publish while the volume
// is published at another target.
func singleWriter(t mounter.Table, path string, src mounter.Source, c *csi.VolumeCapability, staging, target string) error {
	if c.GetAccessMode().GetMode() != csi.VolumeCapability_AccessMode_SINGLE_NODE_SINGLE_WRITER {
		return nil
	}
	for _, u := range t.Uses(path, src) {
		if u.Mountpoint != staging && u.Mountpoint != target {
			return csiutil.Errorf(codes.FailedPrecondition, "volume %s is SINGLE_NODE_SINGLE_WRITER and already published at %s", path, u.Mountpoint)
		}
	}
	return nil
}

// makeDir makes a mount point directory, accepting an existing directory but
// never a symlink or another kind of file.
func makeDir(p string) error {
	if err := os.Mkdir(p, 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
		return csiutil.Errorf(codes.Internal, "create %s: %v", p, err)
	}
	fi, err := os.Lstat(p)
	if err != nil {
		return csiutil.Errorf(codes.Internal, "%v", err)
	}
	if !fi.IsDir() {
		return csiutil.Errorf(codes.FailedPrecondition, "%s exists and is not a directory (%s)", p, fi.Mode().Type())
	}
	return nil
}

// unmountAll removes every mount stacked at p (mounter.UnmountAll).
func unmountAll(p string) error {
	if err := mounter.UnmountAll(p); err != nil {
		return csiutil.Errorf(codes.Internal, "%v", err)
	}
	return nil
}

// checkServes refuses a capability this volume cannot serve (block access
// of a directory, another fs_type than a device disk's): FAILED_PRECONDITION,
// the spec's "exceeds capabilities". A directory volume's fs_type is judged
// at CreateVolume only: COs replay a recorded one (a PV's, a Mesos
// profile's) at every stage, and older volumes must go on mounting.
func checkServes(v *volume.Volume, c *csi.VolumeCapability) error {
	err := csiutil.CheckVolume(c, v.Device(), v.Block)
	if err == nil && v.Device() {
		err = csiutil.CheckFSType(c, v.FSType())
	}
	if err != nil {
		return csiutil.Errorf(codes.FailedPrecondition, "volume %s: %v", v.ID, err)
	}
	return nil
}
