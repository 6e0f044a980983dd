// Package check finds out, without changing anything, whether localdisk can
// serve on this node with a given configuration: the kernel interfaces it
// will use, each pool as start-up would find it (its path, its mount, its
// filesystem and whether capacities are enforced or only accounted), the
// state dir, the device disks and their identities, and, in a container,
// whether its binds reach the host. `localdisk check` prints the findings;
// `localdisk serve` logs them at start.
//
// The only things it writes are the probes that no reading can replace,
// each removed again at once: a temporary file in the state dir (is it
// writable?) and, in a container whose host mount namespace is reachable, a
// bind of a temporary directory under the target dir (does it reach the
// host?). It never converges the state, initialises a pool or enables a
// quota.
package check

import (
	"encoding/json"
	"fmt"
	"io"
	"sync"

	"github.com/localdisk-csi/localdisk/driver/pool"
	"github.com/localdisk-csi/localdisk/driver/state"
)

// Level is how a finding bears on serving.
type Level string

// The levels.
const (
	// OK: as it should be.
	OK Level = "ok"
	// Warn: the plugin serves, but not as well as it could (capacity only
	// accounted, a disk missing, propagation not verifiable).
	Warn Level = "warn"
	// Fail: the plugin cannot serve (or a pool, a disk or a volume of it
	// cannot): it would not start, or starts with that part unhealthy.
	Fail Level = "fail"
)

// Finding is one line of the report.
type Finding struct {
	Level Level `json:"level"`
	// Subject is what it is about: kernel, mount, quota, config,
	// state-dir, pool <name>, disk <path>, propagation.
	Subject string `json:"subject"`
	Message string `json:"message"`
}

func (f Finding) String() string { return fmt.Sprintf("%s %s: %s", f.Level, f.Subject, f.Message) }

// Config is what the findings are about: serve's configuration.
type Config struct {
	// StateDir is serve's --state-dir.
	StateDir string
	// Pools is the pools file as serve reads it (or the default ROOT pool).
	Pools *pool.Config
	// TargetDir is where the CO makes staging and target paths, under
	// which the propagation probe binds ("": see ProbeDir).
	TargetDir string
	// Records: also report whether every volume record can be read (serve
	// does not need that finding: reading them is its own first step).
	Records bool
	// WorkDir is the Mesos agent's work dir (--work-dir), if any: a pool
	// sharing its filesystem without enforcement is warned of, as one
	// sharing kubelet's.
	WorkDir string
	// Probe: verify propagation by a real bind where the host's mount
	// table can be read (`localdisk check`); serve only reads the mount
	// table, so that a start killed mid-probe never leaves a bind behind.
	Probe bool
}

// Run computes the findings, in a stable order: kernel, mount, quota,
// state-dir, the pools (and their disks) in configuration order,
// propagation.
func Run(cfg Config) []Finding {
	r := &run{cfg: cfg}
	r.system()
	r.stateDir()
	if cfg.Pools != nil {
		for _, spec := range cfg.Pools.Pools {
			r.pool(spec)
		}
	}
	h := realHost
	if !cfg.Probe {
		h.probe = nil
	}
	r.add(propagation(h, ProbeDir(cfg.TargetDir, cfg.StateDir)))
	return r.out
}

// run accumulates the findings of one Run.
type run struct {
	cfg Config
	out []Finding

	recsOnce sync.Once
	recs     []*state.Record
	recsErr  error
}

func (r *run) add(f Finding)                         { r.out = append(r.out, f) }
func (r *run) ok(subject, format string, a ...any)   { r.add(finding(OK, subject, format, a...)) }
func (r *run) warn(subject, format string, a ...any) { r.add(finding(Warn, subject, format, a...)) }
func (r *run) fail(subject, format string, a ...any) { r.add(finding(Fail, subject, format, a...)) }

func finding(l Level, subject, format string, a ...any) Finding {
	return Finding{Level: l, Subject: subject, Message: fmt.Sprintf(format, a...)}
}

// records reads the volume records once, without writing (see
// state.ReadAll); unreadable ones are left out.
func (r *run) records() []*state.Record {
	r.recsOnce.Do(func() { r.recs, _, r.recsErr = state.ReadAll(r.cfg.StateDir) })
	return r.recs
}

// hasRecords reports whether a record points into the pool; when the
// records cannot be read it says yes, the cautious answer.
func (r *run) hasRecords(name string) func() bool {
	return func() bool {
		for _, rec := range r.records() {
			if rec.Pool == name {
				return true
			}
		}
		return r.recsErr != nil
	}
}

// Failed reports whether any finding is a failure: the plugin cannot serve
// (all of it) as configured.
func Failed(findings []Finding) bool {
	for _, f := range findings {
		if f.Level == Fail {
			return true
		}
	}
	return false
}

// WriteText writes one line per finding: level, subject and message in
// aligned columns.
func WriteText(w io.Writer, findings []Finding) error {
	width := 0
	for _, f := range findings {
		width = max(width, len(f.Subject))
	}
	for _, f := range findings {
		if _, err := fmt.Fprintf(w, "%-5s %-*s  %s\n", f.Level, width, f.Subject, f.Message); err != nil {
			return err
		}
	}
	return nil
}

// WriteJSON writes the findings as one JSON array.
func WriteJSON(w io.Writer, findings []Finding) error {
	if findings == nil {
		findings = []Finding{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(findings)
}
