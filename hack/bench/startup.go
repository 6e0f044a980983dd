package main

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/container-storage-interface/spec/lib/go/csi"

	"github.com/localdisk-csi/localdisk/hack/bench/load"
)

// startupRun is one start of the plugin over --volumes volumes.
type startupRun struct {
	toProbe    time.Duration
	startCPU   time.Duration
	rss, hwm   int64
	listFirst  time.Duration // the first ListVolumes (one page) on a new connection
	list       time.Duration // median of the listCalls after it
	capacity   time.Duration // median of capCalls GetCapacity
	capP99     time.Duration
	listed     int
	rssAfterLs int64
}

const (
	listCalls = 20
	capCalls  = 200
)

// runStartup fills the state with o.volumes volumes, then starts the
// plugin o.runs times, measuring the time to the first successful Probe,
// the CPU spent starting, the idle RSS, ListVolumes and GetCapacity.
func runStartup(ctx context.Context, o *options, in *load.Instance) error {
	progress("populating %d volumes", o.volumes)
	t0 := time.Now()
	if err := in.PopulateTo(ctx, o.volumes); err != nil {
		return err
	}
	progress("populated in %v", time.Since(t0).Round(time.Millisecond))
	loadBefore := loadAvg()
	var runs []startupRun
	for i := range o.runs {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if o.dropCaches {
			if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3"), 0); err != nil {
				return fmt.Errorf("drop caches: %w", err)
			}
		}
		progress("start %d/%d", i+1, o.runs)
		r, err := oneStart(ctx, o, in)
		if serr := in.Stop(); err == nil && serr != nil {
			err = fmt.Errorf("stopping the plugin: %w", serr)
		}
		if err != nil {
			return err
		}
		runs = append(runs, r)
	}
	printStartup(o, in, loadBefore, runs)
	return nil
}

func oneStart(ctx context.Context, o *options, in *load.Instance) (startupRun, error) {
	var r startupRun
	var err error
	if r.toProbe, err = in.Start(ctx); err != nil {
		return r, err
	}
	pid := in.Pid()
	r.startCPU, _ = load.CPUTime(pid)
	select {
	case <-time.After(o.settle):
	case <-ctx.Done():
		return r, ctx.Err()
	}
	if r.rss, r.hwm, err = load.Memory(pid); err != nil {
		return r, err
	}
	conn, err := load.Dial(in.Endpoint)
	if err != nil {
		return r, err
	}
	defer conn.Close()
	cc := csi.NewControllerClient(conn)
	var lat []time.Duration
	for i := range listCalls + 1 {
		t := time.Now()
		resp, err := cc.ListVolumes(ctx, &csi.ListVolumesRequest{})
		if err != nil {
			return r, fmt.Errorf("ListVolumes: %w", err)
		}
		if i == 0 {
			r.listFirst = time.Since(t)
		} else {
			lat = append(lat, time.Since(t))
		}
		r.listed = len(resp.GetEntries())
	}
	r.list = load.Summarize(lat).P50
	lat = lat[:0]
	req := &csi.GetCapacityRequest{VolumeCapabilities: []*csi.VolumeCapability{load.MountCapability()}}
	for range capCalls {
		t := time.Now()
		if _, err := cc.GetCapacity(ctx, req); err != nil {
			return r, fmt.Errorf("GetCapacity: %w", err)
		}
		lat = append(lat, time.Since(t))
	}
	p := load.Summarize(lat)
	r.capacity, r.capP99 = p.P50, p.P99
	r.rssAfterLs, _, _ = load.Memory(pid)
	return r, nil
}

func medianDur(runs []startupRun, f func(startupRun) time.Duration) time.Duration {
	xs := make([]time.Duration, len(runs))
	for i, r := range runs {
		xs[i] = f(r)
	}
	slices.Sort(xs)
	return xs[len(xs)/2]
}

func printStartup(o *options, in *load.Instance, loadBefore string, runs []startupRun) {
	mib := func(b int64) string { return fmt.Sprintf("%.1f", float64(b)/(1<<20)) }
	med := func(f func(startupRun) int64) int64 {
		return int64(medianDur(runs, func(r startupRun) time.Duration { return time.Duration(f(r)) }))
	}
	w := os.Stdout
	fmt.Fprintf(w, "\n## localdisk start-up with %d volumes — %s\n\n", o.volumes, time.Now().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(w, "- machine: %s\n- load average before / after: %s / %s\n- disk under test: %s\n- %s, --log-level %s, page cache %s\n",
		machine(), loadBefore, loadAvg(), diskOf(in.Dir), binVersion(in), o.logLevel,
		map[bool]string{false: "warm", true: "dropped before each start (cold)"}[o.dropCaches])
	fmt.Fprintf(w, "- %d start(s), medians; idle RSS read %v after the first Probe OK; ListVolumes: one page (max_entries 0), timed at the client (includes receiving and decoding the answer): "+
		"the first call on a new connection (its HTTP/2 windows still small), then the median of %d more; GetCapacity: median and p99 of %d calls\n\n",
		len(runs), o.settle, listCalls, capCalls)
	fmt.Fprintln(w, "| volumes | start → Probe OK | CPU s to start | idle RSS MiB | peak RSS MiB | ListVolumes first / median ms | entries | RSS after ListVolumes MiB | GetCapacity p50 / p99 ms |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|")
	fmt.Fprintf(w, "| %d | %s | %.2f | %s | %s | %s / %s | %d | %s | %s / %s |\n", o.volumes,
		medianDur(runs, func(r startupRun) time.Duration { return r.toProbe }).Round(time.Millisecond),
		medianDur(runs, func(r startupRun) time.Duration { return r.startCPU }).Seconds(),
		mib(med(func(r startupRun) int64 { return r.rss })), mib(med(func(r startupRun) int64 { return r.hwm })),
		ms(float64(medianDur(runs, func(r startupRun) time.Duration { return r.listFirst }))),
		ms(float64(medianDur(runs, func(r startupRun) time.Duration { return r.list }))), runs[0].listed,
		mib(med(func(r startupRun) int64 { return r.rssAfterLs })),
		ms(float64(medianDur(runs, func(r startupRun) time.Duration { return r.capacity }))),
		ms(float64(medianDur(runs, func(r startupRun) time.Duration { return r.capP99 }))))
	var each []string
	for _, r := range runs {
		each = append(each, r.toProbe.Round(time.Millisecond).String())
	}
	fmt.Fprintf(w, "\nstart → Probe OK of each start: %s\n", strings.Join(each, ", "))
}
