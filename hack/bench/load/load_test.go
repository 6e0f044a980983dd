package load

import (
	"errors"
	"fmt"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestSummarize(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 100; i++ {
		ds = append(ds, time.Duration(101-i)*time.Millisecond)
	}
	got := Summarize(ds)
	want := Percentiles{N: 100, P50: 50 * time.Millisecond, P99: 99 * time.Millisecond, Max: 100 * time.Millisecond}
	if got != want {
		t.Errorf("Summarize = %+v, want %+v", got, want)
	}
	if got := Summarize(nil); got != (Percentiles{}) {
		t.Errorf("Summarize(nil) = %+v", got)
	}
	if got := Summarize([]time.Duration{7}); got.P50 != 7 || got.P99 != 7 || got.Max != 7 {
		t.Errorf("Summarize of one = %+v", got)
	}
}

func TestCode(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{status.Error(codes.Aborted, "busy"), "Aborted"},
		{fmt.Errorf("mkdir x: %w", unix.EEXIST), "EEXIST"},
		{fmt.Errorf("wrapped: %w", os.ErrDeadlineExceeded), "error"},
		{errors.New("other"), "error"},
	} {
		if got := Code(c.err); got != c.want {
			t.Errorf("Code(%v) = %q, want %q", c.err, got, c.want)
		}
	}
}

func TestRecorder(t *testing.T) {
	r := NewRecorder()
	r.Observe(StepCreate, time.Millisecond, nil)
	r.Observe(StepCreate, 0, status.Error(codes.ResourceExhausted, "full"))
	r.Observe(StepCreate, 0, status.Error(codes.ResourceExhausted, "full again"))
	if p := r.Latency(StepCreate); p.N != 1 {
		t.Errorf("latencies count failed calls: %+v", p)
	}
	if got := FormatErrors(r.Errors()); got != "CreateVolume:ResourceExhausted×2" {
		t.Errorf("errors = %q", got)
	}
	if got := r.FirstMessages()["CreateVolume:ResourceExhausted"]; got != "rpc error: code = ResourceExhausted desc = full" {
		t.Errorf("first message = %q", got)
	}
}

func TestParseStatCPU(t *testing.T) {
	// A comm with spaces and parentheses; utime 250 and stime 50 ticks.
	stat := "42 (a b) c)) S 1 42 42 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 100 0 0"
	got, err := parseStatCPU([]byte(stat))
	if err != nil || got != 3*time.Second {
		t.Errorf("parseStatCPU = %v, %v; want 3s", got, err)
	}
	if _, err := parseStatCPU([]byte("42 (x) S 1")); err == nil {
		t.Error("short stat accepted")
	}
	self, err := CPUTime(os.Getpid())
	if err != nil || self < 0 {
		t.Errorf("CPUTime(self) = %v, %v", self, err)
	}
	rss, hwm, err := Memory(os.Getpid())
	if err != nil || rss <= 0 || hwm < rss {
		t.Errorf("Memory(self) = %d, %d, %v", rss, hwm, err)
	}
}

// Slices of one measurement add up to one result: every latency, every
// error, the first message of each kind, and the rate of both together.
func TestResultAdd(t *testing.T) {
	a := &Result{Done: 10, Failed: 1, Elapsed: time.Second, Rec: NewRecorder()}
	a.Rec.Observe(StepCreate, time.Millisecond, nil)
	a.Rec.Observe(StepCreate, 0, status.Error(codes.ResourceExhausted, "first"))
	b := &Result{Done: 30, Elapsed: time.Second, Rec: NewRecorder()}
	b.Rec.Observe(StepCreate, 3*time.Millisecond, nil)
	b.Rec.Observe(StepCreate, 0, status.Error(codes.ResourceExhausted, "second"))
	b.Rec.Observe(StepDelete, 0, status.Error(codes.Internal, "boom"))
	a.Add(b)
	if a.Done != 40 || a.Failed != 1 || a.Rate() != 20 {
		t.Errorf("done %d failed %d rate %v, want 40, 1, 20", a.Done, a.Failed, a.Rate())
	}
	if p := a.Rec.Latency(StepCreate); p.N != 2 || p.Max != 3*time.Millisecond {
		t.Errorf("latencies %+v, want both slices'", p)
	}
	if got := FormatErrors(a.Rec.Errors()); got != "CreateVolume:ResourceExhausted×2 DeleteVolume:Internal×1" {
		t.Errorf("errors = %q", got)
	}
	if got := a.Rec.FirstMessages()["CreateVolume:ResourceExhausted"]; got != "rpc error: code = ResourceExhausted desc = first" {
		t.Errorf("first message = %q, want the first slice's", got)
	}
	if b.Done != 30 || b.Rec.Latency(StepCreate).N != 1 {
		t.Error("the added slice changed")
	}
}
