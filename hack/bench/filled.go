package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/localdisk-csi/localdisk/hack/bench/load"
)

// filledBackend names the plugin's samples taken with --filled volumes.
const filledBackend = "filled"

// runFilled measures the full cycle again, each W and run, after the bench's
// own plugin was stopped, given o.filled existing volumes (load.Populate)
// and restarted: the cost of a cycle must not grow with the node's volumes.
// The empty-node figures are the main table's.
func runFilled(ctx context.Context, o *options, in *load.Instance, cfg load.Config, rep *report) error {
	if err := in.Stop(); err != nil {
		return fmt.Errorf("stopping the plugin: %w", err)
	}
	progress("populating %d volumes", o.filled)
	if err := in.PopulateTo(ctx, o.filled); err != nil {
		return err
	}
	if _, err := in.Start(ctx); err != nil {
		return err
	}
	o.pid = in.Pid()
	// Start-up walks every volume once (the usage of an accounted pool,
	// MeasureUse): a one-time cost of the restart, reported apart, not a
	// cost of each cycle.
	waited, used, err := load.WaitIdle(ctx, o.pid, time.Second, 5*time.Minute)
	if err != nil {
		return fmt.Errorf("waiting for the plugin's start-up work: %w", err)
	}
	rep.filledSettle, rep.filledSettleCPU = waited, used
	progress("plugin idle after %v (%v of CPU) with %d volumes", waited.Round(time.Millisecond), used, o.filled)
	conn, err := load.Dial(in.Endpoint)
	if err != nil {
		return err
	}
	defer conn.Close()
	plugin := load.NewPlugin(conn, o.params, o.size)
	for run := range o.runs {
		for _, w := range o.workers {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			c := cfg
			c.Workers, c.Duration, c.Count = w, o.duration, o.creates
			c.Prefix = fmt.Sprintf("r%d-w%d-filled", run, w)
			progress("run %d/%d W=%d full with %d volumes", run+1, o.runs, w, o.filled)
			rep.add(measure(ctx, o, filledBackend, plugin, "full", c, false))
		}
	}
	rep.filled = o.filled
	return nil
}

// printFilled writes the empty-node vs filled-node table.
func (r *report) printFilled(w io.Writer) {
	if r.filled == 0 {
		return
	}
	fmt.Fprintf(w, "\n### full cycle: empty node vs %d existing volumes\n\n", r.filled)
	fmt.Fprintf(w, "After its restart with %d volumes the plugin was idle (< 1%% of a CPU over 1 s) after %v, having used %v of CPU "+
		"(its start-up walk of the volumes' usage); the cycles were measured after that.\n\n",
		r.filled, r.filledSettle.Round(time.Millisecond), r.filledSettleCPU)
	cols := []string{"W", "empty ops/s", fmt.Sprintf("%d volumes ops/s", r.filled), "ratio", "cycle empty", "cycle filled", "errors (filled)"}
	fmt.Fprintf(w, "| %s |\n|%s\n", strings.Join(cols, " | "), strings.Repeat("---|", len(cols)))
	for _, k := range r.keys() {
		f := r.samples[k][filledBackend]
		if k.mode != "full" || len(f) == 0 {
			continue
		}
		e := r.samples[k]["plugin"]
		er, fr := median(e, rate), median(f, rate)
		fmt.Fprintf(w, "| %d | %s | %s | %s | %s | %s | %s |\n", k.workers, num(er, "%.1f"), num(fr, "%.1f"), ratio(fr, er),
			latencyCell(e, load.StepCycle), latencyCell(f, load.StepCycle), errorsCell(f))
	}
}
