package driver

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"

	"github.com/localdisk-csi/localdisk/driver/admin"
	"github.com/localdisk-csi/localdisk/driver/check"
	"github.com/localdisk-csi/localdisk/driver/controller"
	"github.com/localdisk-csi/localdisk/driver/identity"
	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/metrics"
	"github.com/localdisk-csi/localdisk/driver/mounter"
	"github.com/localdisk-csi/localdisk/driver/mounts"
	"github.com/localdisk-csi/localdisk/driver/node"
	"github.com/localdisk-csi/localdisk/driver/pool"
	"github.com/localdisk-csi/localdisk/driver/quota"
	"github.com/localdisk-csi/localdisk/driver/snapshot"
	"github.com/localdisk-csi/localdisk/driver/volume"
	"github.com/localdisk-csi/localdisk/driver/wire"
)

// Driver is one running plugin.
type Driver struct {
	opts    Options
	log     *logrus.Entry
	Volumes *volume.Manager
	// Snapshots are the snapshots of ROOT/PATH volumes (driver/snapshot).
	Snapshots *snapshot.Manager
}

// New loads the pools file, opens the state and converges it. A bad pools
// file or unreadable state stops here, naming the bad entry.
func New(opts Options, log *logrus.Logger) (*Driver, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	cfg := pool.Default(opts.StateDir)
	if opts.ConfigFile != "" {
		var err error
		if cfg, err = pool.Load(opts.ConfigFile, opts.WorkDir); err != nil {
			return nil, err
		}
	}
	entry := log.WithField("component", "localdisk")
	logInterfaces(entry)
	logFindings(entry, check.Run(check.Config{StateDir: opts.StateDir, Pools: cfg, WorkDir: opts.WorkDir}))
	vols, err := volume.New(opts.StateDir, cfg, entry.WithField("component", "volumes"))
	if err != nil {
		return nil, err
	}
	snaps, err := snapshot.New(vols, opts.StateDir, entry.WithField("component", "snapshots"))
	if err != nil {
		vols.Close()
		return nil, err
	}
	// Read-only binds made with mount(2) are prepared there (0700, inside
	// the state dir, which no CO path may enter).
	if err := mounter.SetScratch(filepath.Join(opts.StateDir, layout.ScratchDir)); err != nil {
		snaps.Close()
		vols.Close()
		return nil, err
	}
	debug.FreeOSMemory() // return loading's garbage: the plugin idles for days
	return &Driver{opts: opts, log: entry, Volumes: vols, Snapshots: snaps}, nil
}

// Run serves until ctx ends, then stops gracefully (in-flight RPCs finish,
// up to a grace period) and removes the socket.
func (d *Driver) Run(ctx context.Context) error {
	defer d.Volumes.Close()
	defer d.Snapshots.Close() // first: its background copies use the volumes
	path, _ := SocketPath(d.opts.Endpoint)
	l, err := listen(path)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", d.opts.Endpoint, err)
	}
	var m *metrics.Metrics
	if d.opts.MetricsAddress != "" {
		m = metrics.New(d.Volumes)
		ml, err := net.Listen("tcp", d.opts.MetricsAddress)
		if err != nil {
			l.Close()
			return fmt.Errorf("metrics address %s: %w", d.opts.MetricsAddress, err)
		}
		go func() {
			if err := m.Serve(ctx, ml); err != nil {
				d.log.WithError(err).Error("metrics server stopped")
			}
		}()
	}
	if d.opts.PprofAddress != "" {
		if err := servePprof(ctx, d.opts.PprofAddress); err != nil {
			l.Close()
			return err
		}
		runtime.SetMutexProfileFraction(100)
		runtime.SetBlockProfileRate(int(time.Millisecond))
	}
	codec := wire.NewCodec()
	srv := grpc.NewServer(grpc.ForceServerCodecV2(codec), grpc.ChainUnaryInterceptor(interceptors(d.log.WithField("component", "grpc"), m)...))
	csi.RegisterIdentityServer(srv, &identity.Server{Name: d.opts.DriverName, Version: Version})
	csi.RegisterControllerServer(srv, &controller.Server{Volumes: d.Volumes, Snapshots: d.Snapshots, NodeID: d.opts.NodeID,
		TopologyKey: layout.TopologyKey, Wire: codec})
	admin.Register(srv, &admin.Server{Volumes: d.Volumes, Snapshots: d.Snapshots, Driver: d.opts.DriverName, Version: Version, NodeID: d.opts.NodeID})
	csi.RegisterNodeServer(srv, &node.Server{Mounts: mounts.New(d.Volumes, mounter.New()), Volumes: d.Volumes, NodeID: d.opts.NodeID,
		TopologyKey: layout.TopologyKey, MaxVolumes: d.opts.MaxVolumesPerNode})

	watch, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() { d.Volumes.Watch(watch, d.opts.HealthInterval); close(watched) }()
	defer func() { // before the volumes close: the watch reads and writes them
		stopWatch()
		select {
		case <-watched:
		case <-time.After(watchStopWait): // a pool's disk hung in a syscall: the stop must not hang too
			d.log.Warnf("the health watch is still busy %v after the stop; closing without it (what it was doing resumes at the next start)", watchStopWait)
		}
	}()
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	d.log.WithFields(logrus.Fields{"endpoint": d.opts.Endpoint, "node_id": d.opts.NodeID,
		"driver": d.opts.DriverName, "version": Version, "pools": len(d.Volumes.Pools()),
		"metrics": d.opts.MetricsAddress}).Info("serving")
	select {
	case err = <-done:
	case <-ctx.Done():
		stopped := make(chan struct{})
		go func() { srv.GracefulStop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(30 * time.Second):
			srv.Stop()
		}
		err = <-done
	}
	os.Remove(path)
	if isClosed(err) {
		return nil
	}
	return err
}

// watchStopWait bounds how long a stop waits for the health watch: a
// health check, erase resumption or usage walk in flight when the signal
// came (the walk stops at its next volume; a check or a resumption runs to
// its end).
const watchStopWait = 10 * time.Second

// logInterfaces says once, at start, which kernel interfaces this process
// uses where the kernel offers a choice: how binds are made (and why
// mount(2) when the new mount API cannot be used) and how project quotas
// are set.
func logInterfaces(log *logrus.Entry) {
	m, why := mounter.Detect()
	f := log.WithFields(logrus.Fields{"mount": m.String(), "quota": quota.Interface()})
	if why != nil {
		f.WithField("reason", why.Error()).Info("the new mount API cannot be used here: binds are made with mount(2), with the same guarantees")
		return
	}
	f.Debug("kernel interfaces")
}

// logFindings logs what `localdisk check` would report, one line per
// finding (info, warning, error), before start-up converges the state. A
// failure here stops nothing: serve refuses to start only where it always
// did (bad options, a bad pools file, an unusable state dir, an unreadable
// record), and serves the healthy rest of the configuration otherwise.
func logFindings(log *logrus.Entry, findings []check.Finding) {
	for _, f := range findings {
		e := log.WithField("check", f.Subject)
		switch f.Level {
		case check.Fail:
			e.Error(f.Message)
		case check.Warn:
			e.Warn(f.Message)
		default:
			e.Info(f.Message)
		}
	}
}

// Check computes the findings of `localdisk check` for the options of
// serve (the endpoint is not needed) without changing anything: bad
// options or a bad pools file are failures, then come check.Run's.
// targetDir is where the CO makes its mounts ("": see check.ProbeDir).
func Check(opts Options, targetDir string) []check.Finding {
	if err := opts.validate(false); err != nil {
		return []check.Finding{{Level: check.Fail, Subject: "config", Message: err.Error() + ": serve refuses to start"}}
	}
	cfg := pool.Default(opts.StateDir)
	found := check.Finding{Level: check.OK, Subject: "config",
		Message: "no pools file: the default ROOT pool \"root\" at " + cfg.Pools[0].Path}
	if opts.ConfigFile != "" {
		var err error
		if cfg, err = pool.Load(opts.ConfigFile, opts.WorkDir); err != nil {
			found = check.Finding{Level: check.Fail, Subject: "config", Message: err.Error() + ": serve refuses to start"}
		} else {
			found.Message = fmt.Sprintf("%s: %d pool(s)", opts.ConfigFile, len(cfg.Pools))
		}
	}
	return append([]check.Finding{found}, check.Run(check.Config{StateDir: opts.StateDir, Pools: cfg, TargetDir: targetDir, Records: true, Probe: true, WorkDir: opts.WorkDir})...)
}
