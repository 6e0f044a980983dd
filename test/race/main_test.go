// Package race races the real plugin, built with the race detector, against
// itself: more creates than a pool holds, one name created many times at
// once, deletes racing stages and publishes, publishes racing to one target,
// listings and capacity queries under churn. Run it under `go test -race`
// too. Every test ends by checking the plugin's log for "DATA RACE".
package race

import (
	"debug/buildinfo"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/localdisk-csi/localdisk/test/testutil"
)

func TestMain(m *testing.M) { testutil.MainWithBuilds(m) }

// newEnv starts the race-detecting plugin; when the test ends it stops it
// and fails the test if the race detector spoke.
func newEnv(t *testing.T) *testutil.Env { return newEnvWith(t, testutil.EnvOptions{}) }

// newEnvWith is newEnv with the pools o sets up and extra plugin flags
// (args: the plugin is started again with them).
func newEnvWith(t *testing.T, o testutil.EnvOptions, args ...string) *testutil.Env {
	bin := testutil.BuildPluginWith(t, testutil.BuildOptions{Race: true})
	if info, err := buildinfo.ReadFile(bin); err != nil || !slices.ContainsFunc(info.Settings,
		func(s debug.BuildSetting) bool { return s.Key == "-race" && s.Value == "true" }) {
		t.Fatalf("%s is not built with the race detector: %v", bin, err)
	}
	o.Bin = bin
	e := testutil.NewEnv(t, o)
	if len(args) > 0 {
		opts := e.P.Options()
		opts.Args = append(opts.Args, args...)
		e.P.Stop()
		e.P = testutil.StartPlugin(t, bin, opts)
	}
	t.Cleanup(func() {
		if e.P.Running() {
			e.P.Stop() // the race detector's exit status (66) fails Stop
		}
		if races := testutil.GrepLog(e.P.Log(), "DATA RACE", "race: limit on"); len(races) > 0 {
			t.Errorf("the race detector found %d races in the plugin: %q (see %s)", len(races), races, e.P.LogPath)
		}
	})
	return e
}

var kinds = []string{"root", "path", "mount"}

var poolOf = map[string]string{"root": testutil.RootPool, "path": testutil.PathPool, "mount": testutil.MountPool}

func sizeOf(kind string) int64 {
	if kind == "mount" {
		return 0
	}
	return 4 * testutil.MiB
}

// parallel runs f(i) for i in [0, n) at once, released together, and
// returns the status codes, in order.
func parallel(n int, f func(i int) error) []codes.Code {
	out := make([]codes.Code, n)
	var start, done sync.WaitGroup
	start.Add(1)
	for i := range n {
		done.Add(1)
		go func() {
			defer done.Done()
			start.Wait()
			out[i] = status.Code(f(i))
		}()
	}
	start.Done()
	done.Wait()
	return out
}

// count counts the codes equal to c.
func count(cs []codes.Code, c codes.Code) int {
	n := 0
	for _, x := range cs {
		if x == c {
			n++
		}
	}
	return n
}

// tally renders codes as "OK:3 ResourceExhausted:2".
func tally(cs []codes.Code) string {
	m := map[string]int{}
	for _, c := range cs {
		m[c.String()]++
	}
	var parts []string
	for k, v := range m {
		parts = append(parts, k+":"+strconv.Itoa(v))
	}
	slices.Sort(parts)
	return strings.Join(parts, " ")
}

// mountsAt counts the mounts stacked at p.
func mountsAt(t *testing.T, p string) int {
	n := 0
	for _, m := range testutil.Mounts(t, p) {
		if m == p {
			n++
		}
	}
	return n
}
