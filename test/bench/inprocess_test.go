package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sirupsen/logrus"

	"github.com/localdisk-csi/localdisk/driver"
	"github.com/localdisk-csi/localdisk/hack/bench/load"
	"github.com/localdisk-csi/localdisk/test/testutil"
)

// inProcess runs the driver inside the test binary (so -cpuprofile,
// -mutexprofile and -blockprofile see it) on a ROOT pool in a fresh temp
// dir, serving the real gRPC server on a unix socket, logging at info into
// a file as in production. It returns the backend and the CO's config.
func inProcess(b *testing.B) (*load.Plugin, load.Config) {
	b.Helper()
	testutil.RequireRoot(b)
	dir := testutil.ShortTempDir(b)
	in, err := load.NewInstance(dir, "")
	if err != nil {
		b.Fatal(err)
	}
	logFile, err := os.Create(in.LogPath)
	if err != nil {
		b.Fatal(err)
	}
	log := logrus.New()
	log.SetOutput(logFile)
	log.SetFormatter(&logrus.TextFormatter{FullTimestamp: true})
	d, err := driver.New(driver.Options{Endpoint: in.Endpoint, NodeID: "bench-node", StateDir: in.StateDir,
		ConfigFile: in.ConfigPath, DriverName: driver.DefaultDriverName}, log)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("driver: %v", err)
		}
		logFile.Close()
	})
	deadline := time.Now().Add(30 * time.Second)
	for load.Probe(in.Endpoint, time.Second) != nil {
		if time.Now().After(deadline) {
			b.Fatal("the in-process driver did not answer Probe")
		}
		time.Sleep(5 * time.Millisecond)
	}
	conn, err := load.Dial(in.Endpoint)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	cfg := load.Config{Dir: filepath.Join(dir, "co")}
	if err := load.Prepare(cfg); err != nil {
		b.Fatal(err)
	}
	return load.NewPlugin(conn, nil, 1<<20), cfg
}

var inProcessWorkers = []int{1, 4, 16}

// BenchmarkCycleInProcess: b.N full cycles (create, stage, publish,
// write+read, unpublish, unstage, delete) with W workers. Profile with
//
//	go test -run '^$' -bench 'CycleInProcess/W=16' -benchtime 2000x \
//	    -cpuprofile cpu.out -mutexprofile mutex.out -blockprofile block.out ./test/bench
func BenchmarkCycleInProcess(b *testing.B) {
	for _, w := range inProcessWorkers {
		b.Run(fmt.Sprintf("W=%d", w), func(b *testing.B) {
			p, cfg := inProcess(b)
			cfg.Workers, cfg.Count, cfg.Prefix = w, b.N, "cycle"
			b.ResetTimer()
			r := load.RunFull(context.Background(), p, cfg)
			b.StopTimer()
			if r.Failed > 0 {
				b.Fatalf("%d cycles failed: %s", r.Failed, load.FormatErrors(r.Rec.Errors()))
			}
			b.ReportMetric(r.Rate(), "cycles/s")
		})
	}
}

// BenchmarkCreateDeleteInProcess: b.N CreateVolume with W workers, then b.N
// DeleteVolume; ns/op covers both.
func BenchmarkCreateDeleteInProcess(b *testing.B) {
	for _, w := range inProcessWorkers {
		b.Run(fmt.Sprintf("W=%d", w), func(b *testing.B) {
			p, cfg := inProcess(b)
			cfg.Workers, cfg.Count, cfg.Prefix = w, b.N, "create"
			b.ResetTimer()
			cr, dr := load.RunCreateDelete(context.Background(), p, cfg)
			b.StopTimer()
			if cr.Failed+dr.Failed > 0 {
				b.Fatalf("failed: creates %s; deletes %s", load.FormatErrors(cr.Rec.Errors()), load.FormatErrors(dr.Rec.Errors()))
			}
			b.ReportMetric(cr.Rate(), "creates/s")
			b.ReportMetric(dr.Rate(), "deletes/s")
		})
	}
}
