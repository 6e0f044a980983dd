// Package bench holds localdisk's micro-benchmarks. They are not run by
// `make test` (go test runs no benchmark without -bench):
//
//	go test -run '^$' -bench . -benchtime 20x ./test/bench
//	go test -run '^$' -bench 'ListVolumes|GetCapacity|Startup' ./test/bench -args -volumes 10000
//
// ListVolumes, GetCapacity and Startup run the real binary (built once with
// go build, or $LOCALDISK_BIN) over its unix socket, on a state directory
// holding -volumes volumes (default 10,000), made once per test binary: one
// volume through CreateVolume, the rest copied from its record in the
// plugin's own format (hack/bench/load.Populate), with their directories.
// They need no root. The InProcess benchmarks (inprocess_test.go) run the
// driver inside the test binary for pprof, and need root.
package bench

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	"github.com/localdisk-csi/localdisk/hack/bench/load"
)

var volumes = flag.Int("volumes", 10000, "volumes in the state of the ListVolumes, GetCapacity and Startup benchmarks")

// fixture is the populated instance, shared by the benchmarks of one test
// binary (one plugin runs on it at a time) and removed by TestMain.
var fixture struct {
	once sync.Once
	dir  string
	in   *load.Instance
	err  error
}

func TestMain(m *testing.M) {
	flag.Parse()
	code := m.Run()
	if fixture.in != nil {
		_ = fixture.in.Stop()
	}
	if fixture.dir != "" {
		if err := os.RemoveAll(fixture.dir); err != nil {
			fmt.Fprintf(os.Stderr, "bench: removing %s: %v\n", fixture.dir, err)
			code = 1
		}
	}
	os.Exit(code)
}

// populated returns the stopped instance holding *volumes volumes.
func populated(b *testing.B) *load.Instance {
	b.Helper()
	fixture.once.Do(func() {
		ctx := context.Background()
		// Not t.TempDir: a short path on a real disk (the socket lives
		// there, and fsync on tmpfs costs nothing).
		if fixture.dir, fixture.err = os.MkdirTemp("/tmp", "ldb"); fixture.err != nil {
			return
		}
		bin, err := load.Build(ctx, fixture.dir)
		if err == nil {
			fixture.in, err = load.NewInstance(fixture.dir, bin)
		}
		if err == nil {
			start := time.Now()
			err = fixture.in.PopulateTo(ctx, *volumes)
			fmt.Fprintf(os.Stderr, "bench: populated %d volumes in %v\n", *volumes, time.Since(start).Round(time.Millisecond))
		}
		fixture.err = err
	})
	if fixture.err != nil {
		b.Fatalf("populating %d volumes: %v", *volumes, fixture.err)
	}
	return fixture.in
}

// serve starts the plugin on the populated state for the rest of b and
// returns a controller client.
func serve(b *testing.B) (*load.Instance, csi.ControllerClient) {
	in, conn := serveConn(b)
	return in, csi.NewControllerClient(conn)
}

// serveConn is serve, returning the client connection.
func serveConn(b *testing.B) (*load.Instance, *grpc.ClientConn) {
	b.Helper()
	in := populated(b)
	if _, err := in.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	conn, err := load.Dial(in.Endpoint)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		conn.Close()
		if err := in.Stop(); err != nil {
			b.Errorf("stopping the plugin: %v\n%s", err, in.LogPath)
		}
	})
	return in, conn
}

// BenchmarkListVolumes: one ListVolumes of every volume in one page
// (max_entries 0, as Mesos asks every 10 s), timed at the client.
func BenchmarkListVolumes(b *testing.B) {
	_, cc := serve(b)
	ctx := context.Background()
	var last *csi.ListVolumesResponse
	for b.Loop() {
		resp, err := cc.ListVolumes(ctx, &csi.ListVolumesRequest{})
		if err != nil {
			b.Fatal(err)
		}
		if n := len(resp.GetEntries()); n != *volumes {
			b.Fatalf("ListVolumes returned %d volumes, want %d", n, *volumes)
		}
		last = resp
	}
	b.StopTimer()
	decodeMetrics(b, last)
	b.ReportMetric(float64(*volumes), "volumes")
}

// BenchmarkListVolumesReceive is BenchmarkListVolumes without the client's
// decoding: the answer is received as bytes (a client codec that keeps
// them), so ns/op is the plugin's share plus the transport.
func BenchmarkListVolumesReceive(b *testing.B) {
	_, conn := serveConn(b)
	ctx := context.Background()
	var raw rawAnswer
	for b.Loop() {
		if err := conn.Invoke(ctx, "/csi.v1.Controller/ListVolumes", &csi.ListVolumesRequest{}, &raw,
			grpc.ForceCodecV2(rawCodec{})); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	var resp csi.ListVolumesResponse
	if err := proto.Unmarshal(raw, &resp); err != nil || len(resp.GetEntries()) != *volumes {
		b.Fatalf("ListVolumes answered %d volumes (%v), want %d", len(resp.GetEntries()), err, *volumes)
	}
	b.ReportMetric(float64(len(raw))/(1<<20), "answer-MiB")
}

// rawAnswer is an answer's encoding, as received.
type rawAnswer []byte

// rawCodec encodes requests as protobuf and keeps answers as bytes.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	b, err := proto.Marshal(v.(proto.Message))
	return mem.BufferSlice{mem.SliceBuffer(b)}, err
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*rawAnswer) = data.Materialize()
	return nil
}

// decodeMetrics reports the size of the answer and what decoding it costs
// the client (part of ns/op, but not the plugin's doing): ns/op minus
// client-decode-ms is the plugin's share plus the transport.
func decodeMetrics(b *testing.B, resp *csi.ListVolumesResponse) {
	blob, err := proto.Marshal(resp)
	if err != nil {
		b.Fatal(err)
	}
	const n = 5
	start := time.Now()
	for range n {
		if err := proto.Unmarshal(blob, &csi.ListVolumesResponse{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(time.Since(start).Microseconds())/1000/n, "client-decode-ms")
	b.ReportMetric(float64(len(blob))/(1<<20), "answer-MiB")
}

// BenchmarkGetCapacity: GetCapacity for a mount capability, no parameters
// (every pool), as external-provisioner and Mesos poll it.
func BenchmarkGetCapacity(b *testing.B) {
	_, cc := serve(b)
	ctx := context.Background()
	req := &csi.GetCapacityRequest{VolumeCapabilities: []*csi.VolumeCapability{load.MountCapability()}}
	for b.Loop() {
		if _, err := cc.GetCapacity(ctx, req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStartup: from the process start to the first successful Probe
// (polled every millisecond) with the populated state; also reports the
// CPU spent starting, and the idle RSS one second after the first start.
func BenchmarkStartup(b *testing.B) {
	in := populated(b)
	ctx := context.Background()
	var cpu time.Duration
	var rss int64 = -1
	var total time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		d, err := in.Start(ctx)
		if err != nil {
			b.Fatal(err)
		}
		total += d
		b.StopTimer()
		c, _ := load.CPUTime(in.Pid())
		cpu += c
		if rss < 0 {
			time.Sleep(time.Second)
			if rss, _, err = load.Memory(in.Pid()); err != nil {
				b.Fatal(err)
			}
		}
		if err := in.Stop(); err != nil {
			b.Fatalf("stopping the plugin: %v", err)
		}
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms-to-probe")
	b.ReportMetric(float64(cpu.Milliseconds())/float64(b.N), "cpu-ms/start")
	b.ReportMetric(float64(rss)/(1<<20), "idle-RSS-MiB")
	b.ReportMetric(float64(*volumes), "volumes")
}
