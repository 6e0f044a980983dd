package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/localdisk-csi/localdisk/hack/bench/load"
)

type rowKey struct {
	workers int
	mode    string // full, create, delete
}

// sample is one backend's result for one row in one run.
type sample struct {
	key     rowKey
	backend string // plugin or limit
	res     *load.Result
	cpu     time.Duration // -1: unknown
	self    time.Duration // CPU time of the bench process (the CO side, for the plugin)
	peer    time.Duration // the RPC floor: the plugin's CPU time answering its null calls; -1: unknown
	peak    int64         // bytes; -1: unknown (limit: not measured)
}

// add adds o, a further slice of the same run, to s.
func (s *sample) add(o sample) {
	s.res.Add(o.res)
	s.cpu, s.peer = sumKnown(s.cpu, o.cpu), sumKnown(s.peer, o.peer)
	s.self += o.self
	s.peak = max(s.peak, o.peak)
}

// sumKnown is a+b, or -1 (unknown) when either is.
func sumKnown(a, b time.Duration) time.Duration {
	if a < 0 || b < 0 {
		return -1
	}
	return a + b
}

type report struct {
	o          *options
	dir        string
	in         *load.Instance
	loadBefore string
	samples    map[rowKey]map[string][]sample
	filled     int // volumes of the filled-node measurement (runFilled); 0: none
	transport  []transportRow
	// filledSettle is how long the restarted plugin took to go idle, and
	// filledSettleCPU the CPU it used meanwhile (runFilled).
	filledSettle, filledSettleCPU time.Duration
}

func newReport(o *options, dir string, in *load.Instance) *report {
	return &report{o: o, dir: dir, in: in, loadBefore: loadAvg(), samples: map[rowKey]map[string][]sample{}}
}

func (r *report) add(ss []sample) {
	for _, s := range ss {
		if r.samples[s.key] == nil {
			r.samples[s.key] = map[string][]sample{}
		}
		r.samples[s.key][s.backend] = append(r.samples[s.key][s.backend], s)
	}
}

var modeOrder = map[string]int{"full": 0, "create": 1, "delete": 2}

func (r *report) keys() []rowKey {
	var ks []rowKey
	for k := range r.samples {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool {
		if ks[i].workers != ks[j].workers {
			return ks[i].workers < ks[j].workers
		}
		return modeOrder[ks[i].mode] < modeOrder[ks[j].mode]
	})
	return ks
}

func stepsOf(mode string) []string {
	switch mode {
	case "create":
		return []string{load.StepCreate}
	case "delete":
		return []string{load.StepDelete}
	}
	return append(slices.Clone(load.CycleSteps), load.StepCycle)
}

func medianF(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func median(ss []sample, f func(sample) float64) float64 {
	var xs []float64
	for _, s := range ss {
		if v := f(s); v >= 0 {
			xs = append(xs, v)
		}
	}
	if len(xs) == 0 {
		return -1
	}
	return medianF(xs)
}

func ms(d float64) string {
	v := d / float64(time.Millisecond)
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f", v)
	case v >= 10:
		return fmt.Sprintf("%.1f", v)
	}
	return fmt.Sprintf("%.2f", v)
}

// latencyCell is "p50 / p99 / max" in ms, each the median over the runs.
func latencyCell(ss []sample, step string) string {
	pick := func(f func(load.Percentiles) time.Duration) float64 {
		return median(ss, func(s sample) float64 {
			p := s.res.Rec.Latency(step)
			if p.N == 0 {
				return -1
			}
			return float64(f(p))
		})
	}
	p50 := pick(func(p load.Percentiles) time.Duration { return p.P50 })
	if p50 < 0 {
		return "–"
	}
	return ms(p50) + " / " + ms(pick(func(p load.Percentiles) time.Duration { return p.P99 })) +
		" / " + ms(pick(func(p load.Percentiles) time.Duration { return p.Max }))
}

func errorsCell(ss []sample) string {
	total := map[string]int{}
	failed := 0
	for _, s := range ss {
		for k, n := range s.res.Rec.Errors() {
			total[k] += n
		}
		failed += s.res.Failed
	}
	if failed == 0 && len(total) == 0 {
		return "0"
	}
	return fmt.Sprintf("%d failed: %s", failed, load.FormatErrors(total))
}

func rate(s sample) float64 { return s.res.Rate() }

// print writes the report; partial marks an interrupted run.
func (r *report) print(w io.Writer, partial bool) {
	o := r.o
	fmt.Fprintf(w, "\n## localdisk bench — %s\n\n", time.Now().Format("2006-01-02 15:04 MST"))
	if partial {
		fmt.Fprintln(w, "**Interrupted: partial results.**")
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "- machine: %s\n", machine())
	fmt.Fprintf(w, "- load average before / after: %s / %s\n", r.loadBefore, loadAvg())
	fmt.Fprintf(w, "- disk under test: %s\n", diskOf(r.dir))
	target := "plugin started by the bench: " + binVersion(r.in) + ", ROOT pool and state dir in the directory above, --log-level " + o.logLevel
	if r.in == nil {
		target = fmt.Sprintf("attached to %s (pid %d); the limit runs in %s (compare only if on the same disk)", o.endpoint, o.pid, r.dir)
	}
	fmt.Fprintf(w, "- %s\n", target)
	fmt.Fprintf(w, "- workers %v, %d run(s) (cells are medians over runs; errors are totals), full cycle %v per measurement, "+
		"create-only %d volumes, volume size %d bytes, read-only publish %v, limit binds with %s\n",
		o.workers, o.runs, o.duration, o.creates, o.size, o.readOnly, map[bool]string{false: "open_tree+move_mount", true: "mount(2) MS_BIND"}[o.mount2])
	fmt.Fprintf(w, "- limit's durable state changes: %s\n", load.LimitStateChanges)
	fmt.Fprintf(w, "- latencies in ms, `p50 / p99 / max`; ops/s: full cycles, creates or deletes per second; CPU: the plugin's utime+stime (limit: the bench process's); CO CPU: the bench process's while it drives the plugin (gRPC client, on the same CPUs)\n\n")

	cols := []string{"W", "mode", "plugin ops/s", "limit ops/s", "ratio", "1-bind limit ops/s", "ratio to 1 bind", "RPC floor ops/s", "ratio to floor"}
	steps := append(slices.Clone(load.CycleSteps), load.StepCycle)
	cols = append(cols, steps...)
	cols = append(cols, "errors", "CPU s", "CPU ms/op", "CO CPU ms/op", "peak RSS MiB")
	fmt.Fprintf(w, "### plugin vs limit\n\n| %s |\n|%s\n", strings.Join(cols, " | "), strings.Repeat("---|", len(cols)))
	for _, k := range r.keys() {
		pl, li, l1, fl := r.samples[k]["plugin"], r.samples[k]["limit"], r.samples[k]["limit1"], r.samples[k]["floor"]
		pr, lr, l1r, flr := median(pl, rate), median(li, rate), median(l1, rate), median(fl, rate)
		row := []string{fmt.Sprint(k.workers), k.mode, num(pr, "%.1f"), num(lr, "%.1f"), ratio(pr, lr), "", "", "", ""}
		if len(l1) > 0 {
			row[5], row[6] = num(l1r, "%.1f"), ratio(pr, l1r)
		}
		if len(fl) > 0 {
			row[7], row[8] = num(flr, "%.1f"), ratio(pr, flr)
		}
		row = append(row, cells(pl, k.mode, steps)...)
		row = append(row, errorsCell(pl), cpuCells(pl)[0], cpuCells(pl)[1], perOp(pl, func(s sample) time.Duration { return s.self }),
			num(median(pl, func(s sample) float64 { return float64(s.peak) / (1 << 20) }), "%.1f"))
		fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
	}
	fmt.Fprintf(w, "\n### limits (syscalls in the bench process), per step\n\n"+
		"`limit` binds twice (stage and publish), as the plugin does; `1 bind` is the one-bind durable minimum "+
		"(stage and unstage do nothing, publish binds the volume's directory); `RPC floor` is `1 bind` plus one null CSI call "+
		"(NodeGetCapabilities) to the plugin per step: the physical work plus the gRPC transport, none of the plugin's own work. "+
		"CPU is the bench process's; `plugin CPU ms/op` is the plugin's answering the floor's null calls (its share of the transport).\n\n| %s |\n|%s\n",
		strings.Join(cols[:2], " | ")+" | limit | ops/s | "+strings.Join(steps, " | ")+" | errors | CPU s | CPU ms/op | plugin CPU ms/op",
		strings.Repeat("---|", 4+len(steps)+4))
	for _, k := range r.keys() {
		for _, b := range []struct{ key, name string }{{"limit", "limit"}, {"limit1", "1 bind"}, {"floor", "RPC floor"}} {
			li := r.samples[k][b.key]
			if len(li) == 0 {
				continue
			}
			row := []string{fmt.Sprint(k.workers), k.mode, b.name, num(median(li, rate), "%.1f")}
			row = append(row, cells(li, k.mode, steps)...)
			row = append(row, errorsCell(li), cpuCells(li)[0], cpuCells(li)[1], "")
			if b.key == "floor" {
				row[len(row)-1] = perOp(li, func(s sample) time.Duration { return s.peer })
			}
			fmt.Fprintf(w, "| %s |\n", strings.Join(row, " | "))
		}
	}
	r.printTransport(w)
	r.printFilled(w)
	r.printFirstErrors(w)
}

func cells(ss []sample, mode string, steps []string) []string {
	var out []string
	in := stepsOf(mode)
	for _, st := range steps {
		if slices.Contains(in, st) && len(ss) > 0 {
			out = append(out, latencyCell(ss, st))
		} else {
			out = append(out, "")
		}
	}
	return out
}

func cpuCells(ss []sample) [2]string {
	cpu := median(ss, func(s sample) float64 { return s.cpu.Seconds() })
	return [2]string{num(cpu, "%.2f"), perOp(ss, func(s sample) time.Duration { return s.cpu })}
}

// perOp is the median over runs of a CPU time per successful op, in ms.
func perOp(ss []sample, f func(sample) time.Duration) string {
	return num(median(ss, func(s sample) float64 {
		if f(s) < 0 || s.res.Done == 0 {
			return -1
		}
		return float64(f(s).Microseconds()) / 1000 / float64(s.res.Done)
	}), "%.2f")
}

func num(v float64, format string) string {
	if v < 0 {
		return "n/a"
	}
	return fmt.Sprintf(format, v)
}

func ratio(p, l float64) string {
	if p < 0 || l <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("**%.2f×**", p/l)
}

func (r *report) printFirstErrors(w io.Writer) {
	seen := map[string]string{}
	for _, k := range r.keys() {
		for b, ss := range r.samples[k] {
			for _, s := range ss {
				for code, msg := range s.res.Rec.FirstMessages() {
					if _, ok := seen[b+" "+code]; !ok {
						seen[b+" "+code] = msg
					}
				}
			}
		}
	}
	if len(seen) == 0 {
		return
	}
	keys := make([]string, 0, len(seen))
	for k := range seen {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Fprintf(w, "\nFirst error of each kind:\n\n")
	for _, k := range keys {
		fmt.Fprintf(w, "- %s: %s\n", k, seen[k])
	}
}

func loadAvg() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(data))
	return strings.Join(f[:min(3, len(f))], " ")
}

func machine() string {
	var u unix.Utsname
	_ = unix.Uname(&u)
	var si unix.Sysinfo_t
	_ = unix.Sysinfo(&si)
	model := "?"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	return fmt.Sprintf("%d CPUs (%s), %.1f GiB RAM, kernel %s, %s",
		runtime.NumCPU(), model, float64(si.Totalram)*float64(si.Unit)/(1<<30),
		unix.ByteSliceToString(u.Release[:]), runtime.Version())
}

// diskOf names the filesystem and device that hold dir.
func diskOf(dir string) string {
	mps, err := load.MountOf(dir)
	if err != nil {
		return dir
	}
	return fmt.Sprintf("%s (%s on %s, mounted at %s)", dir, mps.FSType, mps.Source, mps.Mountpoint)
}

func binVersion(in *load.Instance) string {
	if in == nil {
		return ""
	}
	out, err := exec.Command(in.Bin, "version").Output()
	if err != nil {
		return in.Bin
	}
	// The version is the first line; the git revision follows.
	version, rest, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	for _, line := range strings.Split(rest, "\n") {
		if r, ok := strings.CutPrefix(line, "git revision:"); ok && strings.TrimSpace(r) != "unknown" {
			version += " (" + strings.TrimSpace(r) + ")"
		}
	}
	return "localdisk " + version
}

// startPerf runs `perf record -g` on pid until the returned function is
// called.
func startPerf(out string, pid int) func() {
	cmd := exec.Command("perf", "record", "-F", "999", "-g", "-p", fmt.Sprint(pid), "-o", out)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		progress("perf record: %v (no profile)", err)
		return nil
	}
	time.Sleep(300 * time.Millisecond) // let it attach
	progress("perf record -g -p %d -o %s", pid, out)
	return func() {
		_ = cmd.Process.Signal(syscall.SIGINT)
		_ = cmd.Wait()
	}
}
