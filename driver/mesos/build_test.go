package mesos_test

import (
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/localdisk-csi/localdisk/driver/mesos"
	"github.com/localdisk-csi/localdisk/driver/pool"
)

const driverName = "localdisk.csi.io"

func marshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testConfig() *pool.Config {
	return &pool.Config{Pools: []pool.Spec{
		{Name: "root", Kind: pool.Root, Path: "/var/lib/mesos", Capacity: pool.Bytes(10 << 30)},
		{Name: "logs", Kind: pool.Path, Path: "/mnt/logs"},
		{Name: "archive", Kind: pool.Path, Path: "/mnt/archive"},
		{Name: "mount", Kind: pool.Mount, ListUnclaimed: true,
			Disks: []pool.DiskSpec{{Path: "/mnt/disk1"}, {Path: "/mnt/disk2"}}},
	}}
}

func TestProfiles(t *testing.T) {
	m, err := mesos.Profiles(testConfig(), mesos.Options{DriverName: driverName})
	if err != nil {
		t.Fatal(err)
	}
	var got pbDiskProfileMapping
	decodeStrict(t, marshal(t, m), &got)
	want := map[string]map[string]string{
		"root":            {"pool": "root"},
		"logs":            {"pool": "logs"},
		"archive":         {"pool": "archive"},
		"mount":           {"pool": "mount"},
		"localdisk-root":  {"kind": "root"},
		"localdisk-path":  {"kind": "path"},
		"localdisk-mount": {"kind": "mount"},
	}
	if names := slices.Sorted(maps.Keys(got.ProfileMatrix)); !slices.Equal(names, slices.Sorted(maps.Keys(want))) {
		t.Fatalf("profiles %v, want %v", names, slices.Sorted(maps.Keys(want)))
	}
	for name, p := range got.ProfileMatrix {
		if p.ResourceProviderSelector != nil || p.CSIPluginTypeSelector == nil || p.CSIPluginTypeSelector.PluginType != driverName {
			t.Errorf("%s: selector must be csi_plugin_type_selector{plugin_type: %s}", name, driverName)
		}
		c := p.VolumeCapabilities
		if c == nil || c.Block != nil || c.Mount == nil || c.Mount.FSType != nil || c.Mount.MountFlags != nil {
			t.Errorf("%s: volume_capabilities must be an empty mount: %+v", name, c)
		} else if c.AccessMode == nil || c.AccessMode.Mode == nil || *c.AccessMode.Mode != "SINGLE_NODE_WRITER" {
			t.Errorf("%s: access_mode must be SINGLE_NODE_WRITER", name)
		} else {
			checkEnum(t, "access_mode.mode", *c.AccessMode.Mode, v0AccessModes)
		}
		if !maps.Equal(p.CreateParameters, want[name]) {
			t.Errorf("%s: create_parameters %v, want %v", name, p.CreateParameters, want[name])
		}
	}
}

func TestProfilesOnlyKindsPresent(t *testing.T) {
	m, err := mesos.Profiles(pool.Default("/var/lib/localdisk"), mesos.Options{DriverName: "other.csi.io"})
	if err != nil {
		t.Fatal(err)
	}
	var got pbDiskProfileMapping
	decodeStrict(t, marshal(t, m), &got)
	if names := slices.Sorted(maps.Keys(got.ProfileMatrix)); !slices.Equal(names, []string{"localdisk-root", "root"}) {
		t.Fatalf("profiles %v, want [localdisk-root root]", names)
	}
	if got.ProfileMatrix["root"].CSIPluginTypeSelector.PluginType != "other.csi.io" {
		t.Errorf("the selector does not follow the driver name")
	}
}

func TestProfilesErrors(t *testing.T) {
	clash := &pool.Config{Pools: []pool.Spec{{Name: "localdisk-root", Kind: pool.Root, Path: "/data"}}}
	for name, tc := range map[string]struct {
		c *pool.Config
		o mesos.Options
	}{
		"nil config":        {nil, mesos.Options{DriverName: driverName}},
		"no pools":          {&pool.Config{}, mesos.Options{DriverName: driverName}},
		"no driver name":    {testConfig(), mesos.Options{}},
		"slash in driver":   {testConfig(), mesos.Options{DriverName: "a/b"}},
		"pool named a kind": {clash, mesos.Options{DriverName: driverName}},
	} {
		if _, err := mesos.Profiles(tc.c, tc.o); !errors.Is(err, mesos.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
}

func providerOptions() mesos.Options {
	return mesos.Options{DriverName: driverName, Binary: "/usr/local/bin/localdisk",
		StateDir: "/var/lib/localdisk", ConfigFile: "/etc/localdisk/resources.json", WorkDir: "/var/lib/mesos"}
}

func TestProviderConfig(t *testing.T) {
	info, err := mesos.ProviderConfig(providerOptions())
	if err != nil {
		t.Fatal(err)
	}
	var got pbResourceProviderInfo
	decodeStrict(t, marshal(t, info), &got)
	if got.Type == nil || *got.Type != "org.apache.mesos.rp.local.storage" || got.Name == nil || *got.Name != "localdisk" {
		t.Fatalf("type/name = %v/%v", got.Type, got.Name)
	}
	if got.ID != nil || got.DefaultReservations != nil || got.Storage == nil || got.Storage.Plugin == nil {
		t.Fatalf("want no id, no default reservations, and storage.plugin: %+v", got)
	}
	p := got.Storage.Plugin
	checkPluginInfo(t, p)
	if *p.Type != driverName || p.Name == nil || *p.Name != "localdisk" || len(p.Containers) != 1 {
		t.Fatalf("plugin = %+v", p)
	}
	c := p.Containers[0]
	if !slices.Equal(c.Services, []string{"CONTROLLER_SERVICE", "NODE_SERVICE"}) {
		t.Errorf("services = %v", c.Services)
	}
	cmd := c.Command
	if cmd == nil || cmd.Shell == nil || *cmd.Shell || cmd.Value == nil || *cmd.Value != "/usr/local/bin/localdisk" {
		t.Fatalf("command must run the binary without a shell: %+v", cmd)
	}
	wantArgs := []string{"/usr/local/bin/localdisk", "serve", "--driver-name=localdisk.csi.io",
		"--state-dir=/var/lib/localdisk", "--config=/etc/localdisk/resources.json", "--work-dir=/var/lib/mesos"}
	if !slices.Equal(cmd.Arguments, wantArgs) {
		t.Errorf("arguments = %q, want %q", cmd.Arguments, wantArgs)
	}
	if cmd.Environment != nil {
		t.Errorf("the agent sets CSI_ENDPOINT itself; no environment wanted")
	}
	res := map[string]float64{}
	for _, r := range c.Resources {
		res[*r.Name] = *r.Scalar.Value
	}
	if len(res) != 2 || res["cpus"] <= 0 || res["cpus"] > 1 || res["mem"] < 64 || res["mem"] > 1024 {
		t.Errorf("resources = %v, want small cpus and mem", res)
	}
}

func TestProviderConfigDefaultPool(t *testing.T) {
	o := providerOptions()
	o.ConfigFile, o.WorkDir, o.Name = "", "", "rp_1"
	info, err := mesos.ProviderConfig(o)
	if err != nil {
		t.Fatal(err)
	}
	var got pbResourceProviderInfo
	decodeStrict(t, marshal(t, info), &got)
	args := got.Storage.Plugin.Containers[0].Command.Arguments
	if want := []string{"/usr/local/bin/localdisk", "serve", "--driver-name=localdisk.csi.io", "--state-dir=/var/lib/localdisk"}; !slices.Equal(args, want) {
		t.Errorf("arguments = %q, want %q", args, want)
	}
	if *got.Name != "rp_1" || *got.Storage.Plugin.Name != "rp_1" {
		t.Errorf("--name must name the provider and the plugin")
	}
}

func TestProviderConfigErrors(t *testing.T) {
	for name, edit := range map[string]func(*mesos.Options){
		"dash in driver name": func(o *mesos.Options) { o.DriverName = "local-disk.csi.io" },
		"empty driver part":   func(o *mesos.Options) { o.DriverName = "localdisk..io" },
		"dash in name":        func(o *mesos.Options) { o.Name = "local-disk" },
		"relative binary":     func(o *mesos.Options) { o.Binary = "localdisk" },
		"no binary":           func(o *mesos.Options) { o.Binary = "" },
		"no state dir":        func(o *mesos.Options) { o.StateDir = "" },
		"relative config":     func(o *mesos.Options) { o.ConfigFile = "pools.yaml" },
		"unclean work dir":    func(o *mesos.Options) { o.WorkDir = "/var/lib/mesos/" },
	} {
		o := providerOptions()
		edit(&o)
		if _, err := mesos.ProviderConfig(o); !errors.Is(err, mesos.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
}

func TestIsolatorConfig(t *testing.T) {
	for _, tc := range []struct {
		o              mesos.Options
		name, tpr, end string
	}{
		{mesos.Options{DriverName: driverName, Endpoint: "unix:///run/localdisk/csi.sock"},
			"localdisk_unmanaged", "", "unix:///run/localdisk/csi.sock"},
		{mesos.Options{DriverName: "local-disk.example", Name: "n1", Endpoint: "unix:///x.sock", TargetPathRoot: "/mnt/csi"},
			"n1", "/mnt/csi", "unix:///x.sock"},
	} {
		info, err := mesos.IsolatorConfig(tc.o)
		if err != nil {
			t.Fatal(err)
		}
		var got pbCSIPluginInfo
		decodeStrict(t, marshal(t, info), &got)
		checkPluginInfo(t, &got)
		if *got.Type != tc.o.DriverName || got.Name == nil || *got.Name != tc.name {
			t.Errorf("type/name = %s/%v, want %s/%s", *got.Type, got.Name, tc.o.DriverName, tc.name)
		}
		if len(got.Endpoints) != 1 || *got.Endpoints[0].CSIService != "NODE_SERVICE" || *got.Endpoints[0].Endpoint != tc.end {
			t.Errorf("endpoints = %+v", got.Endpoints)
		}
		if got.TargetPathExists != nil {
			t.Errorf("target_path_exists must stay unset: localdisk creates the target")
		}
		if (got.TargetPathRoot == nil) != (tc.tpr == "") || tc.tpr != "" && *got.TargetPathRoot != tc.tpr {
			t.Errorf("target_path_root = %v, want %q", got.TargetPathRoot, tc.tpr)
		}
	}
}

func TestIsolatorConfigErrors(t *testing.T) {
	for name, o := range map[string]mesos.Options{
		"no endpoint":       {DriverName: driverName},
		"tcp endpoint":      {DriverName: driverName, Endpoint: "tcp://127.0.0.1:1"},
		"relative socket":   {DriverName: driverName, Endpoint: "unix://csi.sock"},
		"bare path":         {DriverName: driverName, Endpoint: "/run/csi.sock"},
		"no driver name":    {Endpoint: "unix:///x.sock"},
		"slash in name":     {DriverName: driverName, Name: "a/b", Endpoint: "unix:///x.sock"},
		"relative tpr root": {DriverName: driverName, Endpoint: "unix:///x.sock", TargetPathRoot: "mnt"},
	} {
		if _, err := mesos.IsolatorConfig(o); !errors.Is(err, mesos.ErrInvalid) {
			t.Errorf("%s: err = %v, want ErrInvalid", name, err)
		}
	}
}
