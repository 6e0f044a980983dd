// Command bench measures localdisk against the physical limit of what it
// does: it drives a running plugin over its CSI socket as a CO would, with
// W parallel workers, and in the same run does the same volume life
// directly with syscalls (plus the durable record writes a crash-safe
// plugin cannot avoid), then prints both side by side as a markdown table.
//
//	go run ./hack/bench                      # build and start the plugin, W=1,4,16, 3 runs
//	go run ./hack/bench --endpoint unix:///run/csi.sock --pid 1234 --params pool=root
//	go run ./hack/bench --startup --volumes 10000   # start-up, idle RSS, ListVolumes, GetCapacity
//	go run ./hack/bench --snapshots --snapshot-sizes 1Gi,8Gi --snapshot-files 10000
//	                                         # snapshot and restore on btrfs, XFS (reflink), ext4 (copy)
//
// It needs root (mounts). Everything it makes lives in one temporary
// directory on a real disk (--dir; tmpfs is refused), which is removed at
// the end, also after a failure or Ctrl-C: cycles in flight finish and undo
// themselves, the plugin it started is stopped, and any mount left behind
// is detached (and reported: it is a bug).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc"

	"github.com/localdisk-csi/localdisk/hack/bench/load"
)

type options struct {
	workers    []int
	runs       int
	slices     int
	duration   time.Duration
	creates    int
	modes      []string
	warmup     int
	readOnly   bool
	size       int64
	endpoint   string
	pid        int
	params     map[string]string
	dir        string
	logLevel   string
	mount2     bool
	startup    bool
	volumes    int
	settle     time.Duration
	dropCaches bool
	perf       string
	filled     int
	rtCalls    int
	echo       string

	snapshots   bool
	snapSizes   []int64
	snapFiles   int
	snapFS      map[string]bool
	snapTimeout time.Duration
}

func main() { os.Exit(run()) }

func run() int {
	o, err := parseFlags()
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	if o.echo != "" {
		l, err := net.Listen("unix", flag.Arg(0))
		if err == nil {
			err = load.ServeEcho(o.echo, l)
		}
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	// The first SIGINT/SIGTERM stops new work; cleanup then runs to the end
	// (later signals are swallowed until it has).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := bench(ctx, o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 1
	}
	return 0
}

func parseFlags() (*options, error) {
	o := &options{}
	workers := flag.String("workers", "1,4,16", "comma-separated numbers of parallel workers")
	modes := flag.String("mode", "full,create", "modes: full (the whole cycle), create (N creates, then N deletes)")
	size := flag.String("size", "1Mi", "required_bytes = limit_bytes of each volume")
	params := flag.String("params", "", "CreateVolume parameters, k=v,k=v (default: none; the bench's own plugin has one pool)")
	flag.IntVar(&o.runs, "runs", 3, "repeat everything this many times and report medians")
	flag.IntVar(&o.slices, "slices", 3, "split each measurement into this many slices, the plugin and the limits taking turns slice by slice (a run's figure sums its slices)")
	flag.DurationVar(&o.duration, "duration", 3*time.Second, "how long each full-cycle measurement runs")
	flag.IntVar(&o.creates, "creates", 300, "volumes per create-only measurement")
	flag.IntVar(&o.warmup, "warmup", 20, "unmeasured full cycles (4 workers) before the first measurement")
	flag.BoolVar(&o.readOnly, "ro", false, "publish read-only (the limit then remounts read-only too)")
	flag.StringVar(&o.endpoint, "endpoint", "", "attach to the plugin serving this unix:// endpoint instead of starting one")
	flag.IntVar(&o.pid, "pid", 0, "with --endpoint: the plugin's PID, for its CPU time and peak RSS")
	flag.StringVar(&o.dir, "dir", os.TempDir(), "parent of the temporary directory; must be a real disk, not tmpfs")
	flag.StringVar(&o.logLevel, "log-level", "info", "--log-level of the plugin the bench starts")
	flag.BoolVar(&o.mount2, "limit-mount2", false, "the limit binds with mount(2) MS_BIND instead of open_tree+move_mount (as the plugin)")
	flag.BoolVar(&o.startup, "startup", false, "measure start-up (to the first Probe OK), idle RSS, ListVolumes and GetCapacity with --volumes volumes instead")
	flag.IntVar(&o.volumes, "volumes", 10000, "with --startup: volumes on disk")
	flag.DurationVar(&o.settle, "settle", 2*time.Second, "with --startup: idle time before RSS is read")
	flag.BoolVar(&o.dropCaches, "drop-caches", false, "with --startup: drop the page cache before each start (cold start; affects the whole machine)")
	flag.IntVar(&o.filled, "filled", 10000, "then measure the full cycle again with this many existing volumes (0: skip; only with the bench's own plugin)")
	flag.IntVar(&o.rtCalls, "transport-calls", 1000, "then time this many round trips (back to back, then each after 1 ms idle) to a raw unix socket, a bare grpc-go server and the plugin (0: skip)")
	flag.StringVar(&o.echo, "echo", "", "internal: serve as the transport measurement's echo server (raw or grpc) on the unix socket given as the one argument")
	flag.StringVar(&o.perf, "perf", "", "record `perf record -g` of the plugin into this file during the first slice of the first full-cycle run with the most workers")
	flag.BoolVar(&o.snapshots, "snapshots", false, "measure a snapshot and a restore of a volume of each --snapshot-sizes on btrfs, XFS with reflink and ext4 with snapshots: copy instead")
	snapSizes := flag.String("snapshot-sizes", "1Gi,8Gi", "with --snapshots: the data sizes, ascending")
	flag.IntVar(&o.snapFiles, "snapshot-files", 10000, "with --snapshots: the files the data is in")
	snapFSList := flag.String("snapshot-fs", "btrfs,xfs,ext4", "with --snapshots: the filesystems (btrfs: btrfs snapshots, xfs: reflink, ext4: full copy)")
	flag.DurationVar(&o.snapTimeout, "snapshot-timeout", 10*time.Minute, "with --snapshots: the deadline of each CreateVolume from a snapshot (replayed after DEADLINE_EXCEEDED)")
	flag.Parse()
	if o.echo != "" && flag.NArg() != 1 {
		return nil, errors.New("--echo serves on the one unix socket given as argument")
	}
	if o.echo == "" && flag.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments %q", flag.Args())
	}
	for _, w := range strings.Split(*workers, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(w))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("--workers: bad number %q", w)
		}
		o.workers = append(o.workers, n)
	}
	for _, m := range strings.Split(*modes, ",") {
		if m = strings.TrimSpace(m); m != "full" && m != "create" {
			return nil, fmt.Errorf("--mode: unknown mode %q (want full, create)", m)
		}
		o.modes = append(o.modes, m)
	}
	var err error
	if o.size, err = parseSize(*size); err != nil {
		return nil, fmt.Errorf("--size: %w", err)
	}
	if *params != "" {
		o.params = map[string]string{}
		for _, kv := range strings.Split(*params, ",") {
			k, v, ok := strings.Cut(kv, "=")
			if !ok {
				return nil, fmt.Errorf("--params: %q is not k=v", kv)
			}
			o.params[k] = v
		}
	}
	if o.runs < 1 || o.slices < 1 || o.creates < 1 || o.duration <= 0 {
		return nil, errors.New("--runs, --slices, --creates and --duration must be positive")
	}
	if o.creates < o.slices {
		return nil, errors.New("--creates must be at least --slices (each slice creates some)")
	}
	if o.snapSizes, err = parseSizes(*snapSizes); err != nil {
		return nil, fmt.Errorf("--snapshot-sizes: %w", err)
	}
	o.snapFS = map[string]bool{}
	for _, f := range strings.Split(*snapFSList, ",") {
		if f = strings.TrimSpace(f); !slices.ContainsFunc(snapFilesystems, func(s snapFS) bool { return s.name == f }) {
			return nil, fmt.Errorf("--snapshot-fs: unknown filesystem %q (want btrfs, xfs, ext4)", f)
		}
		o.snapFS[f] = true
	}
	if o.snapFiles < 1 || o.snapTimeout <= 0 {
		return nil, errors.New("--snapshot-files and --snapshot-timeout must be positive")
	}
	if (o.startup || o.snapshots) && o.endpoint != "" {
		return nil, errors.New("--startup and --snapshots start their own plugin: they cannot be combined with --endpoint")
	}
	if o.startup && o.snapshots {
		return nil, errors.New("--startup and --snapshots are separate runs")
	}
	if o.startup && o.endpoint != "" {
		return nil, errors.New("--startup starts its own plugin: it cannot be combined with --endpoint")
	}
	return o, nil
}

func parseSize(s string) (int64, error) {
	mult := int64(1)
	for suf, m := range map[string]int64{"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30} {
		if t, ok := strings.CutSuffix(s, suf); ok {
			s, mult = t, m
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("bad size %q", s)
	}
	return n * mult, nil
}

// bench makes the temporary directory, runs the measurements and always
// cleans up.
func bench(ctx context.Context, o *options) (err error) {
	if os.Geteuid() != 0 {
		return errors.New("run as root: the cycle mounts")
	}
	var st unix.Statfs_t
	if err := unix.Statfs(o.dir, &st); err != nil {
		return fmt.Errorf("--dir: %w", err)
	}
	if st.Type == unix.TMPFS_MAGIC || st.Type == unix.RAMFS_MAGIC {
		return fmt.Errorf("--dir %s is on tmpfs: fsync costs nothing there; give a directory on a real disk", o.dir)
	}
	dir, err := os.MkdirTemp(o.dir, "ldbench")
	if err != nil {
		return err
	}
	if dir, err = filepath.EvalSymlinks(dir); err != nil {
		return err
	}
	var in *load.Instance
	defer func() {
		if in != nil && in.Proc != nil {
			p := in.Proc
			if serr := in.Stop(); serr != nil {
				fmt.Fprintf(os.Stderr, "bench: the plugin did not stop cleanly: %v\n%s", serr, p.LogTail(4096))
			}
		}
		detached, rerr := load.RemoveDir(dir)
		for _, mp := range detached {
			fmt.Fprintf(os.Stderr, "bench: WARNING: %s was still mounted at the end; detached it\n", mp)
		}
		if rerr != nil {
			err = errors.Join(err, fmt.Errorf("cleanup: %w", rerr))
		}
	}()
	if o.startup || o.snapshots || o.endpoint == "" {
		progress("building ./cmd/localdisk")
		bin, err := load.Build(ctx, dir)
		if err != nil {
			return err
		}
		if o.snapshots {
			return runSnapshots(ctx, o, dir, bin)
		}
		if in, err = load.NewInstance(dir, bin); err != nil {
			return err
		}
		in.LogLevel = o.logLevel
	}
	if o.startup {
		return runStartup(ctx, o, in)
	}
	if in != nil {
		if _, err := in.Start(ctx); err != nil {
			return err
		}
		o.endpoint, o.pid = in.Endpoint, in.Pid()
	}
	conn, err := load.Dial(o.endpoint)
	if err != nil {
		return err
	}
	defer conn.Close()
	return runLoad(ctx, o, dir, conn, in)
}

func progress(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "%s bench: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
}

// runLoad runs every (run, W, mode) for the plugin and the limit, then
// prints the table.
func runLoad(ctx context.Context, o *options, dir string, conn *grpc.ClientConn, in *load.Instance) error {
	plugin := load.NewPlugin(conn, o.params, o.size)
	limit, err := load.NewLimit(filepath.Join(dir, "limit"))
	if err != nil {
		return err
	}
	defer limit.Close()
	limit.Mount2 = o.mount2
	limit1, err := load.NewLimit(filepath.Join(dir, "limit1"))
	if err != nil {
		return err
	}
	defer limit1.Close()
	limit1.Mount2, limit1.OneBind = o.mount2, true
	limitRPC, err := load.NewLimit(filepath.Join(dir, "limitrpc"))
	if err != nil {
		return err
	}
	defer limitRPC.Close()
	limitRPC.Mount2, limitRPC.OneBind = o.mount2, true
	floor := load.NewRPCFloor(limitRPC, conn)
	cfg := load.Config{Dir: filepath.Join(dir, "co"), ReadOnly: o.readOnly}
	if err := load.Prepare(cfg); err != nil {
		return err
	}
	rep := newReport(o, dir, in)
	if o.warmup > 0 {
		progress("warm-up: %d cycles", o.warmup)
		w := cfg
		w.Workers, w.Count, w.Prefix = 4, o.warmup, "warmup"
		for _, b := range []load.Backend{plugin, limit, limit1, floor} {
			if r := load.RunFull(ctx, b, w); r.Failed > 0 {
				return fmt.Errorf("warm-up: %d of %d cycles failed: %s", r.Failed, o.warmup, load.FormatErrors(r.Rec.Errors()))
			}
		}
	}
	backends := []backend{{"plugin", plugin}, {"limit", limit}, {"limit1", limit1}, {"floor", floor}}
	for run := range o.runs {
		for _, w := range o.workers {
			for _, mode := range o.modes {
				// Rotate which goes first, so none always meets a journal
				// another just filled. The one-bind limit and the RPC floor
				// differ from the limit in the full cycle only.
				order := []int{0, 1}
				if mode == "full" {
					order = append(order, 2, 3)
				}
				for range run % len(order) {
					order = append(order[1:], order[0])
				}
				// The backends take turns slice by slice, so that the
				// host's drift (this VM's rates move by 2x within a
				// minute) falls on all of them alike.
				got := map[int][]sample{}
				for slice := range o.slices {
					progress("run %d/%d W=%d %s slice %d/%d: %s", run+1, o.runs, w, mode, slice+1, o.slices, backendNames(backends, order))
					for _, i := range order {
						if ctx.Err() != nil {
							rep.print(os.Stdout, true)
							return ctx.Err()
						}
						c := cfg
						c.Workers, c.Duration, c.Count = w, o.duration/time.Duration(o.slices), share(o.creates, o.slices, slice)
						c.Prefix = fmt.Sprintf("r%d-w%d-%s-%s-s%d", run, w, mode, backends[i].name, slice)
						profile := o.perf != "" && run == 0 && slice == 0 && mode == "full" && i == 0 && w == slices.Max(o.workers)
						ss := measure(ctx, o, backends[i].name, backends[i].b, mode, c, profile)
						if got[i] == nil {
							got[i] = ss
							continue
						}
						for j := range ss {
							got[i][j].add(ss[j])
						}
					}
				}
				for _, i := range order {
					rep.add(got[i])
				}
			}
		}
	}
	if o.rtCalls > 0 {
		if err := runTransport(ctx, o, dir, conn, rep); err != nil {
			rep.print(os.Stdout, true)
			return err
		}
	}
	if in != nil && o.filled > 0 && slices.Contains(o.modes, "full") {
		if err := runFilled(ctx, o, in, cfg, rep); err != nil {
			rep.print(os.Stdout, true)
			return err
		}
	}
	rep.print(os.Stdout, false)
	return nil
}

// measure runs one mode against one backend, sampling the plugin's CPU time
// and peak RSS (plugin) or this process's CPU time (limit).
func measure(ctx context.Context, o *options, backend string, b load.Backend, mode string, c load.Config, profile bool) []sample {
	isPlugin := backend == "plugin"
	// The plugin's CPU: its own cycle's, or what the floor's null calls
	// cost it.
	watchPlugin := (isPlugin || backend == "floor") && o.pid > 0
	var cpu0 time.Duration
	self0 := selfCPU()
	if watchPlugin {
		if isPlugin {
			_ = load.ResetPeak(o.pid)
		}
		cpu0, _ = load.CPUTime(o.pid)
	}
	var stopPerf func()
	if profile {
		stopPerf = startPerf(o.perf, o.pid)
	}
	var results []*load.Result
	modes := []string{mode}
	if mode == "full" {
		results = append(results, load.RunFull(ctx, b, c))
	} else {
		c.Duration = 0
		cr, dr := load.RunCreateDelete(ctx, b, c)
		results = append(results, cr, dr)
		modes = []string{"create", "delete"}
	}
	if stopPerf != nil {
		stopPerf()
	}
	s := sample{backend: backend, cpu: -1, peak: -1, self: selfCPU() - self0, peer: -1}
	pluginCPU := time.Duration(-1)
	if watchPlugin {
		if cpu1, err := load.CPUTime(o.pid); err == nil {
			pluginCPU = cpu1 - cpu0
		}
	}
	if backend == "floor" {
		s.peer = pluginCPU
	}
	if isPlugin && o.pid > 0 {
		s.cpu = pluginCPU
		if _, hwm, err := load.Memory(o.pid); err == nil {
			s.peak = hwm
		}
	} else if !isPlugin {
		s.cpu = s.self
	}
	out := make([]sample, len(results))
	for i, r := range results {
		out[i] = s
		out[i].key = rowKey{workers: c.Workers, mode: modes[i]}
		out[i].res = r
		if len(results) > 1 { // split create/delete CPU by time
			share := float64(r.Elapsed) / float64(results[0].Elapsed+results[1].Elapsed)
			out[i].self = time.Duration(float64(s.self) * share)
			if s.cpu > 0 {
				out[i].cpu = time.Duration(float64(s.cpu) * share)
			}
		}
	}
	return out
}

func selfCPU() time.Duration {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// share is slice's part of n split in slices parts, the first ones taking
// the remainder: the parts add up to n.
func share(n, slices, slice int) int {
	if slice < n%slices {
		return n/slices + 1
	}
	return n / slices
}

// backend is one of the things measured side by side, by its name in the
// report.
type backend struct {
	name string
	b    load.Backend
}

func backendNames(bs []backend, order []int) string {
	names := make([]string, len(order))
	for k, i := range order {
		names[k] = bs[i].name
	}
	return strings.Join(names, ", ")
}
