package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"path/filepath"

	"github.com/localdisk-csi/localdisk/driver"
	"github.com/localdisk-csi/localdisk/driver/mesos"
	"github.com/localdisk-csi/localdisk/driver/pool"
)

// Defaults of `localdisk mesos` for the paths on the agent.
const (
	defaultMesosEndpoint = "unix:///run/localdisk/csi.sock"
	defaultMesosBinary   = "/usr/local/bin/localdisk"
)

const mesosUsage = `usage: localdisk mesos profiles|provider-config|isolator-config [flags]

  profiles         the URI disk profile adaptor's JSON: one profile per pool
                   and one per kind (localdisk-root, localdisk-path, localdisk-mount)
  provider-config  the storage local resource provider config that launches
                   'localdisk serve' (for --resource_provider_config_dir)
  isolator-config  the CSI plugin config of an unmanaged localdisk serving
                   --endpoint (for --csi_plugin_config_dir)

Every subcommand takes every flag and ignores those it does not use.
`

// mesosCmd prints, as indented JSON, one of the documents a Mesos agent needs
// to use localdisk (see package driver/mesos).
func mesosCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stderr, mesosUsage)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	sub, args := args[0], args[1:]
	switch sub {
	case "profiles", "provider-config", "isolator-config":
	default:
		fmt.Fprintf(stderr, "localdisk mesos: unknown document %q\n%s", sub, mesosUsage)
		return 2
	}
	fs := flag.NewFlagSet("localdisk mesos "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o mesos.Options
	config := fs.String("config", "", "pools file to read: native YAML/JSON or Mesos agent --resources JSON (none: one ROOT pool under --state-dir)")
	agentConfig := fs.String("agent-config", "", "path of the pools file on the agent, written into the plugin's command (default: --config made absolute)")
	fs.StringVar(&o.WorkDir, "work-dir", "", "Mesos agent work dir: the ROOT pool of a Mesos resources pools file")
	fs.StringVar(&o.StateDir, "state-dir", driver.DefaultStateDir, "localdisk's state directory on the agent")
	fs.StringVar(&o.DriverName, "driver-name", driver.DefaultDriverName, "CSI driver name: the Mesos plugin type")
	fs.StringVar(&o.Endpoint, "endpoint", defaultMesosEndpoint, "endpoint of the unmanaged plugin (isolator-config)")
	fs.StringVar(&o.Binary, "binary", defaultMesosBinary, "path of the localdisk binary on the agent (provider-config)")
	fs.StringVar(&o.Name, "name", "", "resource provider / plugin instance name (default "+
		mesos.DefaultProviderName+" for provider-config, "+mesos.DefaultIsolatorName+" for isolator-config)")
	fs.StringVar(&o.TargetPathRoot, "target-path-root", "", "root of the unmanaged plugin's staging and target paths (isolator-config; default: the agent's)")
	fs.Usage = func() {
		fmt.Fprint(stderr, mesosUsage, "\nflags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "localdisk mesos: unexpected arguments %q\n", fs.Args())
		return 2
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "localdisk mesos %s: %v\n", sub, err)
		return 1
	}
	// The pools file is always validated when given, as the plugin will be.
	cfg := pool.Default(o.StateDir)
	if *config != "" {
		c, err := pool.Load(*config, o.WorkDir)
		if err != nil {
			return fail(err)
		}
		cfg = c
		if o.ConfigFile, err = filepath.Abs(*config); err != nil {
			return fail(err)
		}
	}
	if *agentConfig != "" {
		o.ConfigFile = *agentConfig
	}
	var doc any
	var err error
	switch sub {
	case "profiles":
		doc, err = mesos.Profiles(cfg, o)
	case "provider-config":
		doc, err = mesos.ProviderConfig(o)
	case "isolator-config":
		doc, err = mesos.IsolatorConfig(o)
	}
	if err != nil {
		return fail(err)
	}
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return fail(err)
	}
	return 0
}
