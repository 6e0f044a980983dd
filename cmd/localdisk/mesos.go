package main

import (
	"encoding/json"
	"errors"
	"io"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/localdisk-csi/localdisk/driver"
	"github.com/localdisk-csi/localdisk/driver/mesos"
	"github.com/localdisk-csi/localdisk/driver/pool"
)

// Defaults of `localdisk mesos` for the paths on the agent.
const (
	defaultMesosEndpoint = "unix:///run/localdisk/csi.sock"
	defaultMesosBinary   = "/usr/local/bin/localdisk"
)

// The documents of `localdisk mesos`.
var mesosDocs = []struct{ name, short string }{
	{"profiles", "The URI disk profile adaptor's JSON: one profile per pool and one per kind (localdisk-root, localdisk-path, localdisk-mount)"},
	{"provider-config", "The storage local resource provider config that launches 'localdisk serve' (for --resource_provider_config_dir)"},
	{"isolator-config", "The CSI plugin config of an unmanaged localdisk serving --endpoint (for --csi_plugin_config_dir)"},
}

// newMesosCmd is `localdisk mesos DOCUMENT`: it prints, as indented JSON, one
// of the documents a Mesos agent needs to use localdisk (see package
// driver/mesos). Every document takes every flag and ignores those it does
// not use.
func newMesosCmd() *cobra.Command {
	var o mesos.Options
	var config, agentConfig string
	cmd := &cobra.Command{
		Use:   "mesos profiles|provider-config|isolator-config [flags]",
		Short: "Print the documents a Mesos agent needs",
		Long: `Print, as indented JSON, one of the documents a Mesos agent needs to use
localdisk. Every document takes every flag and ignores those it does not use;
the pools file, when given, is validated as serve would.`,
		// unknown command "x" for "localdisk mesos"; `mesos help` as before
		// cobra, `localdisk help mesos` and `mesos -h`.
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 && args[0] == "help" {
				return nil
			}
			return cobra.NoArgs(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				return cmd.Help()
			}
			return errors.New("which document? profiles, provider-config or isolator-config")
		},
	}
	fs := cmd.PersistentFlags()
	fs.SortFlags = false
	fs.StringVar(&config, "config", "", "pools file to read: native YAML/JSON or Mesos agent --resources JSON (none: one ROOT pool under --state-dir)")
	fs.StringVar(&agentConfig, "agent-config", "", "path of the pools file on the agent, written into the plugin's command (default: --config made absolute)")
	fs.StringVar(&o.WorkDir, "work-dir", "", "Mesos agent work dir: the ROOT pool of a Mesos resources pools file")
	fs.StringVar(&o.StateDir, "state-dir", driver.DefaultStateDir, "localdisk's state directory on the agent")
	fs.StringVar(&o.DriverName, "driver-name", driver.DefaultDriverName, "CSI driver name: the Mesos plugin type")
	fs.StringVar(&o.Endpoint, "endpoint", defaultMesosEndpoint, "endpoint of the unmanaged plugin (isolator-config)")
	fs.StringVar(&o.Binary, "binary", defaultMesosBinary, "path of the localdisk binary on the agent (provider-config)")
	fs.StringVar(&o.Name, "name", "", "resource provider / plugin instance name (default "+
		mesos.DefaultProviderName+" for provider-config, "+mesos.DefaultIsolatorName+" for isolator-config)")
	fs.StringVar(&o.TargetPathRoot, "target-path-root", "", "root of the unmanaged plugin's staging and target paths (isolator-config; default: the agent's)")
	for _, d := range mesosDocs {
		cmd.AddCommand(&cobra.Command{
			Use:   d.name + " [flags]",
			Short: d.short,
			Args:  noArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				return mesosDoc(d.name, o, config, agentConfig, cmd.OutOrStdout())
			},
		})
	}
	return cmd
}

// mesosDoc prints the document name.
func mesosDoc(name string, o mesos.Options, config, agentConfig string, stdout io.Writer) error {
	// The pools file is always validated when given, as the plugin will be.
	cfg := pool.Default(o.StateDir)
	if config != "" {
		c, err := pool.Load(config, o.WorkDir)
		if err != nil {
			return failed(err)
		}
		cfg = c
		if o.ConfigFile, err = filepath.Abs(config); err != nil {
			return failed(err)
		}
	}
	if agentConfig != "" {
		o.ConfigFile = agentConfig
	}
	var doc any
	var err error
	switch name {
	case "profiles":
		doc, err = mesos.Profiles(cfg, o)
	case "provider-config":
		doc, err = mesos.ProviderConfig(o)
	case "isolator-config":
		doc, err = mesos.IsolatorConfig(o)
	}
	if err != nil {
		return failed(err)
	}
	enc := json.NewEncoder(stdout)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return failed(err)
	}
	return nil
}
