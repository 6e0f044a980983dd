package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"google.golang.org/grpc"

	"github.com/localdisk-csi/localdisk/hack/bench/load"
)

// transportGap is the idle time before each call of the idle series: about
// what the CO's own work between two calls of a cycle takes at W=1.
const transportGap = time.Millisecond

// echoNames are the echo servers' rows in the transport table.
var echoNames = map[string]string{
	load.EchoRaw:  "raw unix socket, 32 bytes echoed",
	load.EchoGRPC: "bare grpc-go server, `NodeGetCapabilities`, no interceptors",
}

// transportRow is the round trips to one server.
type transportRow struct {
	name string
	rt   load.RoundTrips
}

// runTransport times round trips from this process to a raw unix-socket
// echo server, to a bare grpc-go server (both children of this process)
// and to the plugin: what the transport alone costs, in the same run.
func runTransport(ctx context.Context, o *options, dir string, conn *grpc.ClientConn, rep *report) error {
	self, err := os.Executable()
	if err != nil {
		return err
	}
	for _, kind := range []string{load.EchoRaw, load.EchoGRPC} {
		progress("transport: %d round trips to a %s echo server", 2*o.rtCalls, kind)
		p, sock, err := load.StartEcho(self, []string{"--echo", kind}, kind, dir)
		if err != nil {
			return err
		}
		call, closeConn, err := load.EchoCaller(kind, sock)
		var rt load.RoundTrips
		if err == nil {
			rt, err = load.MeasureRoundTrips(ctx, o.rtCalls, transportGap, p.Pid(), call)
			closeConn()
		}
		_ = p.Stop(5 * time.Second)
		if err != nil {
			return fmt.Errorf("transport, %s: %w", kind, err)
		}
		rep.transport = append(rep.transport, transportRow{echoNames[kind], rt})
	}
	progress("transport: %d round trips to the plugin", 2*o.rtCalls)
	rt, err := load.MeasureRoundTrips(ctx, o.rtCalls, transportGap, o.pid, load.NullCaller(conn))
	if err != nil {
		return fmt.Errorf("transport, plugin: %w", err)
	}
	rep.transport = append(rep.transport, transportRow{"localdisk, `NodeGetCapabilities` (its interceptors: logging, metrics)", rt})
	return nil
}

// printTransport writes the round-trip table.
func (r *report) printTransport(w io.Writer) {
	if len(r.transport) == 0 {
		return
	}
	fmt.Fprintf(w, "\n### transport: one round trip from this process (the CO) to another\n\n"+
		"%d calls back to back, then %d calls each after %v idle (in a cycle both processes idle between calls); "+
		"µs, `p50 / p99`; server CPU: the server process's utime+stime per call over both series. "+
		"Six calls of the `after idle` kind are a lower bound of a cycle's transport at W=1, whatever the plugin does: "+
		"within a cycle each null call costs more (the RPC floor less the 1-bind limit, per cycle, over six).\n\n"+
		"| to | back to back | after %v idle | server CPU µs/call |\n|---|---|---|---|\n",
		r.o.rtCalls, r.o.rtCalls, transportGap, transportGap)
	us := func(d time.Duration) string { return fmt.Sprintf("%.0f", float64(d)/float64(time.Microsecond)) }
	for _, t := range r.transport {
		cpu := "n/a"
		if t.rt.ServerCPU >= 0 {
			cpu = us(t.rt.ServerCPU)
		}
		fmt.Fprintf(w, "| %s | %s / %s | %s / %s | %s |\n", t.name, us(t.rt.Hot.P50), us(t.rt.Hot.P99), us(t.rt.Idle.P50), us(t.rt.Idle.P99), cpu)
	}
}
