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
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/logging"
	"github.com/grpc-ecosystem/go-grpc-middleware/v2/interceptors/recovery"
	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/metrics"
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

// interceptors is the unary chain, outermost first: the metrics (when
// served; outside recovery, so that a recovered panic is counted as
// Internal), one log line per RPC, and recovery, which turns a panic into
// Internal (and logs it with its stack) so that the plugin survives it.
func interceptors(log *logrus.Entry, m *metrics.Metrics) []grpc.UnaryServerInterceptor {
	var chain []grpc.UnaryServerInterceptor
	if m != nil {
		chain = append(chain, m.Interceptor())
	}
	return append(chain, logInterceptor(log), recovery.UnaryServerInterceptor(
		recovery.WithRecoveryHandlerContext(func(ctx context.Context, p any) error {
			log.WithField("method", methodOf(ctx)).Errorf("panic: %v\n%s", p, debug.Stack())
			return status.Error(codes.Internal, "internal error")
		})))
}

// methodOf is the RPC's method name, from the fields the logging
// interceptor put in its context.
func methodOf(ctx context.Context) string {
	for it := logging.ExtractFields(ctx).Iterator(); it.Next(); {
		if k, v := it.At(); k == logging.MethodFieldKey {
			return fmt.Sprint(v)
		}
	}
	return ""
}

// logInterceptor logs one line per RPC when it finishes: method, code,
// duration and the request's identifying fields (never secrets or
// contexts), through go-grpc-middleware's logging interceptor and logrus
// (see rpcLogger).
func logInterceptor(log *logrus.Entry) grpc.UnaryServerInterceptor {
	inner := logging.UnaryServerInterceptor(rpcLogger(log),
		logging.WithLogOnEvents(logging.FinishCall),
		logging.WithDurationField(func(d time.Duration) logging.Fields { return logging.Fields{"duration", d.String()} }))
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		var fields logging.Fields
		for k, v := range requestFields(req) {
			fields = append(fields, k, v)
		}
		return inner(logging.InjectFields(ctx, fields), req, info, h)
	}
}

// rpcLogger writes the logging interceptor's "finished call" as the line
// localdisk always wrote: "rpc" at info (debug for the quiet RPCs COs
// poll), "rpc failed" with the error at warning (error for Internal), with
// the fields method, code, duration and those of requestFields; the
// interceptor's other fields (service, peer, start time) are left out.
func rpcLogger(log *logrus.Entry) logging.LoggerFunc {
	return func(_ context.Context, _ logging.Level, msg string, kv ...any) {
		f := logrus.Fields{}
		var rpcErr string
		for it := logging.Fields(kv).Iterator(); it.Next(); {
			switch k, v := it.At(); k {
			case logging.MethodFieldKey:
				f["method"] = v
			case "grpc.code":
				f["code"] = v
			case "grpc.error":
				rpcErr = fmt.Sprint(v)
			case logging.ServiceFieldKey, logging.ComponentFieldKey, logging.MethodTypeFieldKey,
				"grpc.start_time", "grpc.request.deadline", "peer.address":
			default:
				f[k] = v
			}
		}
		l := log.WithFields(f)
		if msg != "finished call" {
			l.Debug(msg)
			return
		}
		method, _ := f["method"].(string)
		switch {
		case rpcErr != "" && f["code"] == codes.Internal.String():
			l.WithField(logrus.ErrorKey, rpcErr).Error("rpc failed")
		case rpcErr != "":
			l.WithField(logrus.ErrorKey, rpcErr).Warn("rpc failed")
		case quiet[method]:
			l.Debug("rpc")
		default:
			l.Info("rpc")
		}
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
		if p := r.GetParameters()[layout.ParamPool]; p != "" {
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
