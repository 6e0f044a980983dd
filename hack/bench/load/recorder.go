// Package load drives a volume's whole life, as a CO does, against either a
// running localdisk (over its CSI socket) or the bare syscalls that life
// needs (the physical limit), with W parallel workers, and records the
// latency of every step and every error by code. hack/bench and the
// benchmarks of test/bench use it.
package load

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/status"
)

// The steps of a cycle, in order; each is one CSI RPC except StepIO, the
// CO's own write and read-back of a small file through the target.
const (
	StepCreate    = "CreateVolume"
	StepStage     = "NodeStageVolume"
	StepPublish   = "NodePublishVolume"
	StepIO        = "write+read"
	StepUnpublish = "NodeUnpublishVolume"
	StepUnstage   = "NodeUnstageVolume"
	StepDelete    = "DeleteVolume"
	// StepCycle is a whole cycle (full mode only).
	StepCycle = "cycle"
	// StepCleanup collects the errors of the CO's own directory cleanup.
	StepCleanup = "cleanup"
)

// CycleSteps are the steps of a full cycle, in order.
var CycleSteps = []string{StepCreate, StepStage, StepPublish, StepIO, StepUnpublish, StepUnstage, StepDelete}

// Recorder collects latencies and errors per step; it is safe for
// concurrent use.
type Recorder struct {
	mu    sync.Mutex
	lat   map[string][]time.Duration
	errs  map[string]map[string]int // step -> code -> count
	first map[string]string         // "step code" -> first message
}

// NewRecorder returns an empty recorder.
func NewRecorder() *Recorder {
	return &Recorder{lat: map[string][]time.Duration{}, errs: map[string]map[string]int{}, first: map[string]string{}}
}

// Observe records one call of step that took d and ended with err. Failed
// calls count in the errors only, not in the latencies.
func (r *Recorder) Observe(step string, d time.Duration, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		r.lat[step] = append(r.lat[step], d)
		return
	}
	code := Code(err)
	if r.errs[step] == nil {
		r.errs[step] = map[string]int{}
	}
	r.errs[step][code]++
	if k := step + " " + code; r.first[k] == "" {
		r.first[k] = err.Error()
	}
}

// Add adds the calls o recorded to r (o is not changed).
func (r *Recorder) Add(o *Recorder) {
	o.mu.Lock()
	defer o.mu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()
	for step, ds := range o.lat {
		r.lat[step] = append(r.lat[step], ds...)
	}
	for step, codes := range o.errs {
		if r.errs[step] == nil {
			r.errs[step] = map[string]int{}
		}
		for code, n := range codes {
			r.errs[step][code] += n
		}
	}
	for k, msg := range o.first {
		if r.first[k] == "" {
			r.first[k] = msg
		}
	}
}

// Latency summarises the successful calls of step.
func (r *Recorder) Latency(step string) Percentiles {
	r.mu.Lock()
	defer r.mu.Unlock()
	return Summarize(r.lat[step])
}

// Errors returns the error counts as "step:code" -> count.
func (r *Recorder) Errors() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for step, codes := range r.errs {
		for code, n := range codes {
			out[step+":"+code] += n
		}
	}
	return out
}

// FirstMessages returns the first error message of each "step:code".
func (r *Recorder) FirstMessages() map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]string{}
	for k, msg := range r.first {
		out[strings.Replace(k, " ", ":", 1)] = msg
	}
	return out
}

// Code names an error as a CO would see it: the gRPC code of a status, the
// errno name of a failed syscall, else "error".
func Code(err error) string {
	if s, ok := status.FromError(err); ok {
		return s.Code().String()
	}
	var errno unix.Errno
	switch {
	case errors.As(err, &errno):
		if name := unix.ErrnoName(errno); name != "" {
			return name
		}
		return fmt.Sprintf("errno%d", int(errno))
	case errors.Is(err, context.DeadlineExceeded):
		return "DeadlineExceeded"
	case errors.Is(err, context.Canceled):
		return "Canceled"
	}
	return "error"
}

// Percentiles of a set of latencies.
type Percentiles struct {
	N             int
	P50, P99, Max time.Duration
}

// Summarize computes nearest-rank percentiles.
func Summarize(ds []time.Duration) Percentiles {
	if len(ds) == 0 {
		return Percentiles{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := func(p float64) time.Duration {
		i := int(p*float64(len(s))+0.999999) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	return Percentiles{N: len(s), P50: rank(0.50), P99: rank(0.99), Max: s[len(s)-1]}
}

// FormatErrors renders error counts sorted by key, "-" when there are none.
func FormatErrors(errs map[string]int) string {
	if len(errs) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(errs))
	for k := range errs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s×%d", k, errs[k])
	}
	return strings.Join(parts, " ")
}
