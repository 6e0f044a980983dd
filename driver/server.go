package driver

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// SocketPath extracts the socket path of a unix:// endpoint.
func SocketPath(endpoint string) (string, error) {
	p, ok := strings.CutPrefix(endpoint, "unix://")
	if !ok {
		p, ok = strings.CutPrefix(endpoint, "unix:")
	}
	if !ok || !filepath.IsAbs(p) {
		return "", fmt.Errorf("endpoint %q: want unix:///ABSOLUTE/PATH", endpoint)
	}
	return filepath.Clean(p), nil
}

// listen creates the socket with mode 0600 from the start (umask), after
// unlinking a stale socket file. A socket that still answers belongs to a
// running plugin and is left alone.
func listen(path string) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode().Type() != fs.ModeSocket {
			return nil, fmt.Errorf("%s exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("%s: another process is serving on this socket", path)
		}
		if err := os.Remove(path); err != nil {
			return nil, fmt.Errorf("remove stale socket: %w", err)
		}
	}
	old := syscall.Umask(0o177)
	l, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		l.Close()
		return nil, err
	}
	return l, nil
}

// quiet RPCs are polled by COs; they are logged at debug level.
var quiet = map[string]bool{
	"Probe": true, "GetPluginInfo": true, "GetPluginCapabilities": true,
	"ControllerGetCapabilities": true, "NodeGetCapabilities": true, "NodeGetInfo": true,
	"GetCapacity": true, "ListVolumes": true, "NodeGetVolumeStats": true, "NodeGetVolumeHealth": true,
}

// interceptor logs one line per RPC (method, code, duration and the
// request's identifying fields, never secrets or contexts) and turns a panic
// into Internal.
func interceptor(log *logrus.Entry) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (resp any, err error) {
		start := time.Now()
		method := info.FullMethod[strings.LastIndexByte(info.FullMethod, '/')+1:]
		defer func() {
			if r := recover(); r != nil {
				log.WithField("method", method).Errorf("panic: %v\n%s", r, debug.Stack())
				err = status.Error(codes.Internal, "internal error")
			}
			code := status.Code(err)
			l := log.WithFields(requestFields(req)).WithFields(logrus.Fields{
				"method": method, "code": code.String(), "duration": time.Since(start).String()})
			switch {
			case err != nil && code == codes.Internal:
				l.WithError(err).Error("rpc failed")
			case err != nil:
				l.WithError(err).Warn("rpc failed")
			case quiet[method]:
				l.Debug("rpc")
			default:
				l.Info("rpc")
			}
		}()
		return h(ctx, req)
	}
}

func requestFields(req any) logrus.Fields {
	f := logrus.Fields{}
	if r, ok := req.(interface{ GetVolumeId() string }); ok && r.GetVolumeId() != "" {
		f["volume_id"] = r.GetVolumeId()
	}
	if r, ok := req.(interface{ GetName() string }); ok && r.GetName() != "" {
		f["name"] = r.GetName()
	}
	if r, ok := req.(interface{ GetTargetPath() string }); ok && r.GetTargetPath() != "" {
		f["target_path"] = r.GetTargetPath()
	}
	if r, ok := req.(interface{ GetStagingTargetPath() string }); ok && r.GetStagingTargetPath() != "" {
		f["staging_target_path"] = r.GetStagingTargetPath()
	}
	if r, ok := req.(interface{ GetVolumeCapability() *csi.VolumeCapability }); ok {
		if g := r.GetVolumeCapability().GetMount().GetVolumeMountGroup(); g != "" {
			f["volume_mount_group"] = g
		}
	}
	if r, ok := req.(interface{ GetParameters() map[string]string }); ok {
		if p := r.GetParameters()["pool"]; p != "" {
			f["pool"] = p
		}
	}
	if r, ok := req.(interface{ GetSecrets() map[string]string }); ok && len(r.GetSecrets()) > 0 {
		f["num_secrets"] = len(r.GetSecrets())
	}
	return f
}

// isClosed reports the error Serve returns after a graceful stop.
func isClosed(err error) bool {
	return err == nil || errors.Is(err, grpc.ErrServerStopped) || errors.Is(err, net.ErrClosed)
}
