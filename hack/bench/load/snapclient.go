package load

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// SnapClient drives snapshots and restores over CSI as a CO does.
type SnapClient struct {
	Controller csi.ControllerClient
	Node       csi.NodeClient
	// Poll is how often a snapshot that is not ready yet is asked about
	// (GetSnapshot); default 10 ms.
	Poll time.Duration
}

// NewSnapClient makes a SnapClient on conn.
func NewSnapClient(conn grpc.ClientConnInterface) *SnapClient {
	return &SnapClient{Controller: csi.NewControllerClient(conn), Node: csi.NewNodeClient(conn), Poll: 10 * time.Millisecond}
}

// Create calls CreateVolume with required = limit = capacity, filled from
// src if not nil.
func (c *SnapClient) Create(ctx context.Context, name string, capacity int64, src *csi.VolumeContentSource) (Vol, error) {
	resp, err := c.Controller.CreateVolume(ctx, &csi.CreateVolumeRequest{
		Name:                name,
		CapacityRange:       &csi.CapacityRange{RequiredBytes: capacity, LimitBytes: capacity},
		VolumeCapabilities:  []*csi.VolumeCapability{MountCapability()},
		VolumeContentSource: src,
	})
	if err != nil {
		return Vol{}, err
	}
	return Vol{ID: resp.GetVolume().GetVolumeId(), Context: resp.GetVolume().GetVolumeContext()}, nil
}

// Delete calls DeleteVolume.
func (c *SnapClient) Delete(ctx context.Context, v Vol) error {
	_, err := c.Controller.DeleteVolume(ctx, &csi.DeleteVolumeRequest{VolumeId: v.ID})
	return err
}

// WithPublished stages and publishes v at coDir/staging/key and
// coDir/pods/key (as load.Config's directories), runs f on the target,
// then unpublishes, unstages and removes the staging directory, whatever f
// returned.
func (c *SnapClient) WithPublished(ctx context.Context, v Vol, coDir, key string, f func(target string) error) (err error) {
	p := &Plugin{Controller: c.Controller, Node: c.Node}
	staging, target := filepath.Join(coDir, "staging", key), filepath.Join(coDir, "pods", key)
	if err := p.Stage(ctx, v, staging); err != nil {
		return fmt.Errorf("NodeStageVolume: %w", err)
	}
	// The undo runs even when ctx is done.
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()
	defer func() {
		if uerr := p.Unstage(uctx, v, staging); uerr != nil {
			err = errors.Join(err, fmt.Errorf("NodeUnstageVolume: %w", uerr))
		} else if rerr := os.Remove(staging); rerr != nil && !errors.Is(rerr, os.ErrNotExist) {
			err = errors.Join(err, rerr)
		}
	}()
	if err := p.Publish(ctx, v, staging, target, false); err != nil {
		return fmt.Errorf("NodePublishVolume: %w", err)
	}
	defer func() {
		if uerr := p.Unpublish(uctx, v, target); uerr != nil {
			err = errors.Join(err, fmt.Errorf("NodeUnpublishVolume: %w", uerr))
		}
	}()
	return f(target)
}

// Snapshot calls CreateSnapshot and, while the snapshot is not ready to
// use, GetSnapshot every Poll until it is. It returns the snapshot's ID
// (also when it then fails) and the number of calls.
func (c *SnapClient) Snapshot(ctx context.Context, name, sourceID string) (id string, calls int, err error) {
	resp, err := c.Controller.CreateSnapshot(ctx, &csi.CreateSnapshotRequest{Name: name, SourceVolumeId: sourceID})
	calls++
	if err != nil {
		return "", calls, err
	}
	snap := resp.GetSnapshot()
	id = snap.GetSnapshotId()
	for !snap.GetReadyToUse() {
		select {
		case <-ctx.Done():
			return id, calls, ctx.Err()
		case <-time.After(c.Poll):
		}
		g, err := c.Controller.GetSnapshot(ctx, &csi.GetSnapshotRequest{SnapshotId: id})
		calls++
		if err != nil {
			return id, calls, fmt.Errorf("GetSnapshot: %w", err)
		}
		snap = g.GetSnapshot()
	}
	return id, calls, nil
}

// DeleteSnapshot calls DeleteSnapshot.
func (c *SnapClient) DeleteSnapshot(ctx context.Context, id string) error {
	_, err := c.Controller.DeleteSnapshot(ctx, &csi.DeleteSnapshotRequest{SnapshotId: id})
	return err
}

// Restore calls CreateVolume from snapshot snapID, each call with a
// deadline of timeout, and calls it again after DEADLINE_EXCEEDED (as a CO
// retries) until it succeeds, fails otherwise or ctx ends. It returns the
// number of calls.
func (c *SnapClient) Restore(ctx context.Context, name string, capacity int64, snapID string, timeout time.Duration) (Vol, int, error) {
	src := &csi.VolumeContentSource{Type: &csi.VolumeContentSource_Snapshot{
		Snapshot: &csi.VolumeContentSource_SnapshotSource{SnapshotId: snapID}}}
	for calls := 1; ; calls++ {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		v, err := c.Create(cctx, name, capacity, src)
		cancel()
		if status.Code(err) != codes.DeadlineExceeded || ctx.Err() != nil {
			return v, calls, err
		}
	}
}
