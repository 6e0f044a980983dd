package load

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"
	"google.golang.org/grpc"
)

// The transport floor: what one round trip between two processes costs on
// this machine, whatever the server does. An echo server (ServeEcho) runs
// in a child process, the bench binary itself, so that the raw socket, a
// bare grpc-go server and the plugin are timed by the same client in the
// same run.

// Echo kinds: a raw unix socket echoing what it reads, and a grpc-go server
// with no interceptors whose NodeGetCapabilities answers from nothing.
const (
	EchoRaw  = "raw"
	EchoGRPC = "grpc"
)

// ServeEcho serves kind on l until l is closed.
func ServeEcho(kind string, l net.Listener) error {
	switch kind {
	case EchoGRPC:
		s := grpc.NewServer()
		csi.RegisterNodeServer(s, nullNode{})
		return s.Serve(l)
	case EchoRaw:
		for {
			c, err := l.Accept()
			if err != nil {
				return err
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}
	return fmt.Errorf("echo kind %q: want %s or %s", kind, EchoRaw, EchoGRPC)
}

type nullNode struct{ csi.UnimplementedNodeServer }

func (nullNode) NodeGetCapabilities(context.Context, *csi.NodeGetCapabilitiesRequest) (*csi.NodeGetCapabilitiesResponse, error) {
	return &csi.NodeGetCapabilitiesResponse{}, nil
}

// StartEcho runs `self args...` (the bench binary in its echo mode) serving
// kind at dir/echo-KIND.sock and waits until it accepts connections.
func StartEcho(self string, args []string, kind, dir string) (*Process, string, error) {
	sock := filepath.Join(dir, "echo-"+kind+".sock")
	p, err := Start(self, append(args, sock), filepath.Join(dir, "echo-"+kind+".log"))
	if err != nil {
		return nil, "", err
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.Dial("unix", sock)
		if err == nil {
			c.Close()
			return p, sock, nil
		}
		if p.Exited() || time.Now().After(deadline) {
			_ = p.Stop(5 * time.Second)
			return nil, "", fmt.Errorf("echo server %s did not come up: %v\n%s", kind, err, p.LogTail(2048))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// EchoCaller returns one round trip to the echo server of kind at sock
// (RawCaller, or NullCaller on a new connection) and a function closing
// its connection.
func EchoCaller(kind, sock string) (func() error, func(), error) {
	if kind == EchoRaw {
		return RawCaller(sock)
	}
	conn, err := Dial(sock)
	if err != nil {
		return nil, nil, err
	}
	return NullCaller(conn), func() { conn.Close() }, nil
}

// RawCaller returns a call that writes 32 bytes to the raw echo server at
// sock and reads them back, and a function closing its connection.
func RawCaller(sock string) (func() error, func(), error) {
	c, err := net.Dial("unix", sock)
	if err != nil {
		return nil, nil, err
	}
	msg, got := make([]byte, 32), make([]byte, 32)
	return func() error {
		if _, err := c.Write(msg); err != nil {
			return err
		}
		_, err := io.ReadFull(c, got)
		return err
	}, func() { c.Close() }, nil
}

// NullCaller returns a call of NodeGetCapabilities over conn.
func NullCaller(conn grpc.ClientConnInterface) func() error {
	node := csi.NewNodeClient(conn)
	return func() error {
		_, err := node.NodeGetCapabilities(context.Background(), &csi.NodeGetCapabilitiesRequest{})
		return err
	}
}

// RoundTrips are n round trips to one server: back to back (Hot), then
// each after an idle gap (Idle; in a cycle the CO does its own work between
// two calls, and both processes go idle), and the server's CPU time per
// call over both (-1: unknown).
type RoundTrips struct {
	Hot, Idle Percentiles
	ServerCPU time.Duration
}

// MeasureRoundTrips times n calls back to back, then n calls each after
// gap; pid is the server's, for its CPU time (0: unknown).
func MeasureRoundTrips(ctx context.Context, n int, gap time.Duration, pid int, call func() error) (RoundTrips, error) {
	rt := RoundTrips{ServerCPU: -1}
	cpu0 := time.Duration(-1)
	if pid > 0 {
		if c, err := CPUTime(pid); err == nil {
			cpu0 = c
		}
	}
	for _, idle := range []bool{false, true} {
		ds := make([]time.Duration, 0, n)
		for range n {
			if ctx.Err() != nil {
				return rt, ctx.Err()
			}
			if idle {
				time.Sleep(gap)
			}
			start := time.Now()
			if err := call(); err != nil {
				return rt, err
			}
			ds = append(ds, time.Since(start))
		}
		if idle {
			rt.Idle = Summarize(ds)
		} else {
			rt.Hot = Summarize(ds)
		}
	}
	if cpu0 >= 0 {
		if cpu1, err := CPUTime(pid); err == nil {
			rt.ServerCPU = (cpu1 - cpu0) / time.Duration(2*n)
		}
	}
	return rt, nil
}
