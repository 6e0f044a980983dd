package load

import (
	"context"
	"net"
	"path/filepath"
	"testing"
)

// Both echo servers answer, and MeasureRoundTrips times every call of both
// series (no pid: no server CPU).
func TestEchoRoundTrips(t *testing.T) {
	for _, kind := range []string{EchoRaw, EchoGRPC} {
		t.Run(kind, func(t *testing.T) {
			sock := filepath.Join(t.TempDir(), "echo.sock")
			l, err := net.Listen("unix", sock)
			if err != nil {
				t.Fatal(err)
			}
			served := make(chan error, 1)
			go func() { served <- ServeEcho(kind, l) }()
			t.Cleanup(func() { l.Close(); <-served })
			call, done, err := EchoCaller(kind, sock)
			if err != nil {
				t.Fatal(err)
			}
			defer done()
			rt, err := MeasureRoundTrips(context.Background(), 5, 0, 0, call)
			if err != nil {
				t.Fatal(err)
			}
			if rt.Hot.N != 5 || rt.Idle.N != 5 || rt.ServerCPU != -1 {
				t.Errorf("round trips %+v, want 5 and 5 calls and no server CPU", rt)
			}
		})
	}
	if err := ServeEcho("tcp", nil); err == nil {
		t.Error("an unknown echo kind was served")
	}
}
