package mesos

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/pool"
)

// Options say how localdisk runs on the agent. Paths are the agent's.
type Options struct {
	// DriverName is the CSI driver name: the plugin type in every document
	// and the profiles' selector. Required.
	DriverName string
	// Name names the resource provider and its plugin (ProviderConfig) or
	// the unmanaged plugin (IsolatorConfig); empty: DefaultProviderName or
	// DefaultIsolatorName.
	Name string
	// Binary is the absolute path of the localdisk executable (ProviderConfig).
	Binary string
	// ConfigFile is the absolute path of the pools file (ProviderConfig);
	// empty: the plugin serves its default ROOT pool under StateDir.
	ConfigFile string
	// StateDir is localdisk's --state-dir (ProviderConfig).
	StateDir string
	// WorkDir is the agent's work dir, localdisk's --work-dir: needed by a
	// pools file in the Mesos agent resources form (ProviderConfig).
	WorkDir string
	// Endpoint is the unmanaged plugin's unix:///ABS/PATH (IsolatorConfig).
	Endpoint string
	// TargetPathRoot optionally moves the staging and target paths of the
	// unmanaged plugin's volumes (IsolatorConfig).
	TargetPathRoot string
}

// ErrInvalid is wrapped by every error of this package.
var ErrInvalid = errors.New("invalid mesos configuration")

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
}

// Profiles builds the URI disk profile adaptor's document for the pools of
// c: one profile per pool, named after it, with parameters {pool: NAME}, and
// one per kind present, named KindProfilePrefix+KIND, with parameters
// {kind: KIND}. Each selects the plugins of type o.DriverName and asks for a
// mount volume with access mode SINGLE_NODE_WRITER.
func Profiles(c *pool.Config, o Options) (*DiskProfileMapping, error) {
	if c == nil || len(c.Pools) == 0 {
		return nil, invalid("no pools configured")
	}
	if err := checkPluginType(o.DriverName, false); err != nil {
		return nil, err
	}
	m := &DiskProfileMapping{ProfileMatrix: map[string]CSIManifest{}}
	add := func(name, key, value string) error {
		if _, dup := m.ProfileMatrix[name]; dup {
			return invalid("profile %q is both a pool's and a kind's: rename the pool", name)
		}
		m.ProfileMatrix[name] = manifest(o.DriverName, map[string]string{key: value})
		return nil
	}
	kinds := map[pool.Kind]bool{}
	for _, s := range c.Pools {
		kinds[s.Kind] = true
		if err := add(s.Name, layout.ParamPool, s.Name); err != nil {
			return nil, err
		}
	}
	for _, k := range pool.Kinds {
		if !kinds[k] {
			continue
		}
		if err := add(KindProfilePrefix+string(k), layout.ParamKind, string(k)); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func manifest(driverName string, params map[string]string) CSIManifest {
	return CSIManifest{
		CSIPluginTypeSelector: &CSIPluginTypeSelector{PluginType: driverName},
		VolumeCapabilities: VolumeCapability{
			Mount:      &MountVolume{},
			AccessMode: AccessMode{Mode: SingleNodeWriter},
		},
		CreateParameters: params,
	}
}

// ProviderConfig builds the Storage Local Resource Provider config that
// makes the agent launch `localdisk serve` as a standalone container serving
// the controller and node services (the agent passes the endpoint in
// CSI_ENDPOINT and the node ID in MESOS_AGENT_ID). No default reservations:
// the resources stay unreserved, so frameworks such as Marathon can reserve
// them dynamically.
func ProviderConfig(o Options) (*ResourceProviderInfo, error) {
	name := o.Name
	if name == "" {
		name = DefaultProviderName
	}
	if err := checkPluginType(o.DriverName, true); err != nil {
		return nil, err
	}
	if !javaName.MatchString(name) {
		return nil, invalid("name %q: the resource provider checks it against [A-Za-z0-9_]+", name)
	}
	if err := checkAbs("binary", o.Binary, true); err != nil {
		return nil, err
	}
	if err := checkAbs("state dir", o.StateDir, true); err != nil {
		return nil, err
	}
	if err := checkAbs("config", o.ConfigFile, false); err != nil {
		return nil, err
	}
	if err := checkAbs("work dir", o.WorkDir, false); err != nil {
		return nil, err
	}
	args := []string{o.Binary, "serve", "--driver-name=" + o.DriverName, "--state-dir=" + o.StateDir}
	if o.ConfigFile != "" {
		args = append(args, "--config="+o.ConfigFile)
	}
	if o.WorkDir != "" {
		args = append(args, "--work-dir="+o.WorkDir)
	}
	return &ResourceProviderInfo{
		Type: ProviderType,
		Name: name,
		Storage: &Storage{Plugin: CSIPluginInfo{
			Type: o.DriverName,
			Name: name,
			Containers: []CSIPluginContainerInfo{{
				Services:  []string{ControllerService, NodeService},
				Command:   &CommandInfo{Shell: false, Value: o.Binary, Arguments: args},
				Resources: []Resource{scalar("cpus", DefaultCPUs), scalar("mem", DefaultMemMB)},
			}},
		}},
	}, nil
}

func scalar(name string, v float64) Resource {
	return Resource{Name: name, Type: "SCALAR", Scalar: &Scalar{Value: v}}
}

// IsolatorConfig builds the CSIPluginInfo of an unmanaged localdisk serving
// the node service at o.Endpoint, for the agent's --csi_plugin_config_dir.
// A task's CSI volume names the plugin by its type, o.DriverName.
// target_path_exists stays false: localdisk creates the target itself.
func IsolatorConfig(o Options) (*CSIPluginInfo, error) {
	name := o.Name
	if name == "" {
		name = DefaultIsolatorName
	}
	if err := checkPluginType(o.DriverName, false); err != nil {
		return nil, err
	}
	if err := checkPathComponent("name", name); err != nil {
		return nil, err
	}
	p, ok := strings.CutPrefix(o.Endpoint, "unix://")
	if !ok || !filepath.IsAbs(p) || filepath.Clean(p) != p {
		return nil, invalid("endpoint %q: want unix:///ABS/PATH", o.Endpoint)
	}
	if err := checkAbs("target path root", o.TargetPathRoot, false); err != nil {
		return nil, err
	}
	return &CSIPluginInfo{
		Type:           o.DriverName,
		Name:           name,
		Endpoints:      []CSIPluginEndpoint{{CSIService: NodeService, Endpoint: o.Endpoint}},
		TargetPathRoot: o.TargetPathRoot,
	}, nil
}

// javaName is what the storage resource provider accepts as a name, and as
// each dot-separated part of a plugin type.
var javaName = regexp.MustCompile(`^[A-Za-z0-9_]+$`)

// checkPluginType checks a plugin type. The agent builds paths from it
// (<work_dir>/csi/<type>/...); the storage resource provider also wants it to
// be dot-separated [A-Za-z0-9_]+ parts (strict).
func checkPluginType(t string, strict bool) error {
	if err := checkPathComponent("driver name", t); err != nil {
		return err
	}
	if strict {
		for _, part := range strings.Split(t, ".") {
			if !javaName.MatchString(part) {
				return invalid("driver name %q: the resource provider wants dot-separated [A-Za-z0-9_]+ parts as plugin type", t)
			}
		}
	}
	return nil
}

func checkPathComponent(what, s string) error {
	if s == "" || s == "." || s == ".." || strings.ContainsAny(s, "/\x00") {
		return invalid("%s %q: must be a non-empty file name", what, s)
	}
	return nil
}

func checkAbs(what, p string, required bool) error {
	if p == "" && !required {
		return nil
	}
	if !filepath.IsAbs(p) || filepath.Clean(p) != p {
		return invalid("%s %q: want an absolute, clean path", what, p)
	}
	return nil
}
