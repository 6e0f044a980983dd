// Package driver wires localdisk together: options, the volume manager and
// the gRPC server that serves the CSI Identity, Controller and Node services
// on one unix socket.
package driver

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"github.com/spf13/pflag"
)

// Version is set at build time with -ldflags "-X .../driver.Version=v1.2.3"
// (`make build` sets it from git describe). "dev" when not set: `localdisk
// version` then reports the version the Go toolchain stamped into the binary.
var Version = "dev"

// Defaults.
const (
	DefaultDriverName  = "localdisk.csi.io"
	DefaultStateDir    = "/var/lib/localdisk"
	envEndpoint        = "CSI_ENDPOINT"
	envMesosAgentID    = "MESOS_AGENT_ID"
	envStateDir        = "LOCALDISK_STATE_DIR"
	envConfig          = "LOCALDISK_CONFIG"
	envWorkDir         = "LOCALDISK_WORK_DIR"
	maxDriverNameBytes = 63
)

// Options configure one plugin instance.
type Options struct {
	// Endpoint is unix:///ABS/PATH (default $CSI_ENDPOINT).
	Endpoint string
	// NodeID names this node (default $MESOS_AGENT_ID, else the hostname).
	NodeID string
	// StateDir holds the volume records (default /var/lib/localdisk).
	StateDir string
	// ConfigFile is the pools file; empty: one ROOT pool under StateDir.
	ConfigFile string
	// WorkDir is the Mesos agent's work dir: the ROOT pool of a pools file
	// given as Mesos agent resources.
	WorkDir string
	// DriverName is the CSI plugin name.
	DriverName string
	// MaxVolumesPerNode is reported by NodeGetInfo (0: no limit).
	MaxVolumesPerNode int64
	// HealthInterval is how often pools are re-checked.
	HealthInterval time.Duration
	// MetricsAddress serves Prometheus metrics at http://ADDR/metrics
	// (empty: off).
	MetricsAddress string
	// PprofAddress serves Go's profiles at http://ADDR/debug/pprof/
	// (empty: off).
	PprofAddress string
}

// AddFlags registers the options' flags (long forms only: --endpoint, ...).
func (o *Options) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.Endpoint, "endpoint", os.Getenv(envEndpoint), "CSI endpoint, unix:///ABS/PATH (default $"+envEndpoint+")")
	fs.StringVar(&o.NodeID, "node-id", "", "node ID (default $"+envMesosAgentID+", else the hostname)")
	fs.StringVar(&o.StateDir, "state-dir", envOr(envStateDir, DefaultStateDir), "directory of the volume records (env $"+envStateDir+")")
	fs.StringVar(&o.ConfigFile, "config", os.Getenv(envConfig), "pools file: native YAML/JSON, or Mesos agent --resources JSON (default $"+envConfig+"; none: one ROOT pool under the state dir)")
	fs.StringVar(&o.WorkDir, "work-dir", os.Getenv(envWorkDir), "Mesos agent work dir: the ROOT pool of Mesos agent resources (default $"+envWorkDir+")")
	fs.StringVar(&o.DriverName, "driver-name", DefaultDriverName, "CSI driver name")
	fs.Int64Var(&o.MaxVolumesPerNode, "max-volumes-per-node", 0, "max_volumes_per_node reported to the CO (0: no limit)")
	fs.StringVar(&o.MetricsAddress, "metrics-address", "", "serve Prometheus metrics on this host:port at /metrics (default: off)")
	fs.StringVar(&o.PprofAddress, "pprof-address", "", "serve Go profiles on this host:port at /debug/pprof/ (default: off; keep it on loopback)")
	fs.DurationVar(&o.HealthInterval, "health-interval", 30*time.Second, "how often pools are re-checked (a missing disk, one that came back)")
}

var driverNameRE = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9.-]*[a-zA-Z0-9])?$`)

// nodeIDRE is what a node ID must be to serve as a topology value.
var nodeIDRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$`)

// Validate fills defaults from the environment and checks the options.
func (o *Options) Validate() error { return o.validate(true) }

// validate is Validate; `localdisk check` needs no endpoint.
func (o *Options) validate(needEndpoint bool) error {
	if o.NodeID == "" {
		o.NodeID = os.Getenv(envMesosAgentID)
	}
	if o.NodeID == "" {
		h, err := os.Hostname()
		if err != nil {
			return fmt.Errorf("--node-id not given and no hostname: %w", err)
		}
		o.NodeID = h
	}
	if !nodeIDRE.MatchString(o.NodeID) {
		// It is also the topology value (CSI: at most 63 characters,
		// alphanumeric at both ends; Kubernetes makes it a node label).
		return fmt.Errorf("node ID %q is not a valid topology value (at most 63 of [A-Za-z0-9._-], alphanumeric at both ends): give --node-id", o.NodeID)
	}
	if o.Endpoint == "" && needEndpoint {
		return errors.New("--endpoint (or $" + envEndpoint + ") is required")
	}
	if _, err := SocketPath(o.Endpoint); err != nil && o.Endpoint != "" {
		return err
	}
	if !filepath.IsAbs(o.StateDir) {
		return fmt.Errorf("--state-dir %q must be an absolute path", o.StateDir)
	}
	if o.WorkDir != "" && !filepath.IsAbs(o.WorkDir) {
		return fmt.Errorf("--work-dir %q must be an absolute path", o.WorkDir)
	}
	if len(o.DriverName) > maxDriverNameBytes || !driverNameRE.MatchString(o.DriverName) {
		return fmt.Errorf("--driver-name %q is not a valid CSI driver name", o.DriverName)
	}
	if o.HealthInterval <= 0 {
		o.HealthInterval = 30 * time.Second
	}
	if o.MaxVolumesPerNode < 0 {
		return errors.New("--max-volumes-per-node must not be negative")
	}
	return nil
}

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
