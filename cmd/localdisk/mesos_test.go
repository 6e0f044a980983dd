package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/mesos"
	"github.com/localdisk-csi/localdisk/driver/pool"
)

var updateMesos = flag.Bool("update", false, "rewrite the generated examples in deploy/mesos")

const examplesDir = "../../deploy/mesos"

// runMesos runs `localdisk mesos ARGS...` and returns its exit code,
// stdout and stderr.
func runMesos(args ...string) (int, []byte, string) {
	var out, errOut bytes.Buffer
	code := run(append([]string{"mesos"}, args...), &out, &errOut)
	return code, out.Bytes(), errOut.String()
}

// mustRun runs a command that must succeed and decodes its output strictly.
func mustRun(t *testing.T, v any, args ...string) []byte {
	t.Helper()
	code, out, stderr := runMesos(args...)
	if code != 0 {
		t.Fatalf("mesos %q: exit %d: %s", args, code, stderr)
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("mesos %q: strict decode into %T: %v\n%s", args, v, err, out)
	}
	if dec.More() || !bytes.HasSuffix(out, []byte("}\n")) {
		t.Fatalf("mesos %q: want exactly one JSON object and a newline:\n%s", args, out)
	}
	return out
}

func TestMesosProfilesDefaultPool(t *testing.T) {
	var m mesos.DiskProfileMapping
	out := mustRun(t, &m, "profiles", "--state-dir", "/srv/localdisk", "--driver-name", "disk.example.org")
	if names := slices.Sorted(maps.Keys(m.ProfileMatrix)); !slices.Equal(names, []string{"localdisk-root", "root"}) {
		t.Fatalf("profiles %v, want [localdisk-root root]", names)
	}
	p := m.ProfileMatrix["root"]
	if p.CSIPluginTypeSelector.PluginType != "disk.example.org" || p.CreateParameters["pool"] != "root" ||
		p.VolumeCapabilities.Mount == nil || p.VolumeCapabilities.AccessMode.Mode != "SINGLE_NODE_WRITER" {
		t.Errorf("profile root = %+v", p)
	}
	if !bytes.Contains(out, []byte("\n  \"profile_matrix\": {\n")) {
		t.Errorf("output is not indented:\n%s", out)
	}
}

func TestMesosProfilesFromConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "pools.yaml")
	writeMesosFile(t, cfg, "pools:\n- {name: logs, kind: path, path: /mnt/logs}\n- {name: db, kind: mount, disks: [{path: /mnt/db}]}\n")
	var m mesos.DiskProfileMapping
	mustRun(t, &m, "profiles", "--config", cfg)
	want := map[string]string{"logs": "pool", "db": "pool", "localdisk-path": "kind", "localdisk-mount": "kind"}
	if names := slices.Sorted(maps.Keys(m.ProfileMatrix)); !slices.Equal(names, slices.Sorted(maps.Keys(want))) {
		t.Fatalf("profiles %v", names)
	}
	for name, key := range want {
		if len(m.ProfileMatrix[name].CreateParameters) != 1 || m.ProfileMatrix[name].CreateParameters[key] == "" {
			t.Errorf("%s: create_parameters %v, want one %q", name, m.ProfileMatrix[name].CreateParameters, key)
		}
	}
}

func TestMesosProviderConfig(t *testing.T) {
	dir := t.TempDir()
	writeMesosFile(t, filepath.Join(dir, "res.json"), `[{"name":"disk","type":"SCALAR","scalar":{"value":1024}}]`)
	t.Chdir(dir)
	var info mesos.ResourceProviderInfo
	mustRun(t, &info, "provider-config", "--config", "res.json", "--work-dir", "/var/lib/mesos",
		"--state-dir", "/srv/ld", "--binary", "/opt/bin/localdisk", "--name", "disks")
	if info.Type != mesos.ProviderType || info.Name != "disks" || info.Storage.Plugin.Name != "disks" ||
		info.Storage.Plugin.Type != "localdisk.csi.io" {
		t.Fatalf("provider = %+v", info)
	}
	c := info.Storage.Plugin.Containers[0]
	want := []string{"/opt/bin/localdisk", "serve", "--driver-name=localdisk.csi.io", "--state-dir=/srv/ld",
		"--config=" + filepath.Join(dir, "res.json"), "--work-dir=/var/lib/mesos"}
	if c.Command.Shell || c.Command.Value != "/opt/bin/localdisk" || !slices.Equal(c.Command.Arguments, want) {
		t.Errorf("command = %+v, want arguments %q", c.Command, want)
	}
	if !slices.Equal(c.Services, []string{mesos.ControllerService, mesos.NodeService}) {
		t.Errorf("services = %v", c.Services)
	}

	mustRun(t, &info, "provider-config", "--config", "res.json", "--work-dir", "/var/lib/mesos",
		"--agent-config", "/etc/localdisk/resources.json")
	if args := info.Storage.Plugin.Containers[0].Command.Arguments; !slices.Contains(args, "--config=/etc/localdisk/resources.json") {
		t.Errorf("--agent-config not used: %q", args)
	}
}

func TestMesosIsolatorConfig(t *testing.T) {
	var info mesos.CSIPluginInfo
	mustRun(t, &info, "isolator-config", "--endpoint", "unix:///var/run/ld.sock", "--name", "ld",
		"--target-path-root", "/mnt/csi")
	want := mesos.CSIPluginInfo{Type: "localdisk.csi.io", Name: "ld", TargetPathRoot: "/mnt/csi",
		Endpoints: []mesos.CSIPluginEndpoint{{CSIService: mesos.NodeService, Endpoint: "unix:///var/run/ld.sock"}}}
	if !reflect.DeepEqual(info, want) {
		t.Errorf("got %+v, want %+v", info, want)
	}
}

func TestMesosErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	writeMesosFile(t, bad, "pools:\n- {name: Bad, kind: root, path: /x}\n")
	mesosRes := filepath.Join(dir, "res.json")
	writeMesosFile(t, mesosRes, `[{"name":"disk","type":"SCALAR","scalar":{"value":1}}]`)
	for _, tc := range []struct {
		args []string
		code int
		want string // in stderr, or in stdout when the code is 0
	}{
		{nil, 2, "which document? profiles, provider-config or isolator-config"},
		{[]string{"volumes"}, 2, `unknown command "volumes" for "localdisk mesos"`},
		{[]string{"profiles", "--nope"}, 2, "unknown flag: --nope"},
		{[]string{"profiles", "extra"}, 2, "unexpected arguments"},
		{[]string{"profiles", "--config", filepath.Join(dir, "missing.yaml")}, 1, "missing.yaml"},
		{[]string{"profiles", "--config", bad}, 1, "invalid pool configuration"},
		{[]string{"provider-config", "--config", mesosRes}, 1, "--work-dir is required"},
		{[]string{"provider-config", "--binary", "localdisk"}, 1, "binary"},
		{[]string{"provider-config", "--driver-name", "my-disk.io"}, 1, "driver name"},
		{[]string{"isolator-config", "--endpoint", "/run/csi.sock"}, 1, "unix:///ABS/PATH"},
		{[]string{"help"}, 0, "isolator-config"},
		{[]string{"-h"}, 0, "isolator-config"},
		{[]string{"profiles", "-h"}, 0, "--driver-name"},
		{[]string{"profiles", "--help"}, 0, "--target-path-root"},
	} {
		code, out, stderr := runMesos(tc.args...)
		got := stderr
		if tc.code == 0 {
			got = string(out)
		}
		if code != tc.code || !strings.Contains(got, tc.want) {
			t.Errorf("mesos %q: exit %d, stdout %q, stderr %q; want exit %d and %q", tc.args, code, out, stderr, tc.code, tc.want)
		}
		if code != 0 && len(out) > 0 {
			t.Errorf("mesos %q failed but printed %q", tc.args, out)
		}
	}
}

// The examples in deploy/mesos are this command's output for the sample
// pools file as it would be installed on an agent. `make mesos-examples`
// (go test -run TestMesosExamples -args -update) rewrites them.
func TestMesosExamples(t *testing.T) {
	res := filepath.Join(examplesDir, "resources.json")
	for file, args := range map[string][]string{
		"profiles.json": {"profiles", "--config", res, "--work-dir", "/var/lib/mesos"},
		"provider-config.json": {"provider-config", "--config", res, "--work-dir", "/var/lib/mesos",
			"--agent-config", "/etc/localdisk/resources.json"},
		"isolator-config.json": {"isolator-config"},
	} {
		code, out, stderr := runMesos(args...)
		if code != 0 {
			t.Fatalf("mesos %q: exit %d: %s", args, code, stderr)
		}
		path := filepath.Join(examplesDir, file)
		if *updateMesos {
			if err := os.WriteFile(path, out, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		committed, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(committed, out) {
			t.Errorf("%s is stale: run `make mesos-examples`. The command prints:\n%s", path, out)
		}
	}
}

// pools.yaml and resources.json describe the same pools, so either can be
// the agent's pools file.
func TestMesosSamplePoolsAgree(t *testing.T) {
	native, err := pool.Load(filepath.Join(examplesDir, "pools.yaml"), "")
	if err != nil {
		t.Fatal(err)
	}
	fromMesos, err := pool.Load(filepath.Join(examplesDir, "resources.json"), "/var/lib/mesos")
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(native, fromMesos) {
		t.Errorf("pools.yaml gives %+v\nresources.json gives %+v", native, fromMesos)
	}
}

// The Marathon apps name profiles that profiles.json defines and the plugin
// type that isolator-config.json configures; the MOUNT app's volume is a disk
// of the sample.
func TestMesosMarathonApps(t *testing.T) {
	var profiles mesos.DiskProfileMapping
	var isolator mesos.CSIPluginInfo
	readMesosJSON(t, filepath.Join(examplesDir, "profiles.json"), &profiles)
	readMesosJSON(t, filepath.Join(examplesDir, "isolator-config.json"), &isolator)
	for name, p := range profiles.ProfileMatrix {
		// A directory volume takes its pool's filesystem type or none.
		if m := p.VolumeCapabilities.Mount; m == nil || m.FSType != "" {
			t.Errorf("profile %s: mount %+v: want a mount capability with no fs_type", name, m)
		}
	}
	apps, err := filepath.Glob(filepath.Join(examplesDir, "marathon", "*.json"))
	if err != nil || len(apps) != 6 {
		t.Fatalf("want 6 Marathon apps, got %v (%v)", apps, err)
	}
	for _, path := range apps {
		var app struct {
			Container struct {
				Volumes []struct {
					Persistent *struct {
						Type        string `json:"type"`
						ProfileName string `json:"profileName"`
					} `json:"persistent"`
					External *struct {
						Provider string `json:"provider"`
						Name     string `json:"name"`
						Options  struct {
							PluginName string `json:"pluginName"`
						} `json:"options"`
					} `json:"external"`
				} `json:"volumes"`
			} `json:"container"`
		}
		readMesosJSON(t, path, &app)
		if len(app.Container.Volumes) != 1 {
			t.Fatalf("%s: want one volume", path)
		}
		switch v := app.Container.Volumes[0]; {
		case v.Persistent != nil:
			if _, ok := profiles.ProfileMatrix[v.Persistent.ProfileName]; !ok || v.Persistent.Type != "mount" {
				t.Errorf("%s: persistent %+v: want type mount and a profile of profiles.json", path, v.Persistent)
			}
		case v.External != nil:
			if v.External.Provider != "csi" || v.External.Options.PluginName != isolator.Type || v.External.Name == "" {
				t.Errorf("%s: external %+v: want provider csi, pluginName %s", path, v.External, isolator.Type)
			}
			if strings.HasSuffix(path, "csi-mount.json") && v.External.Name != layout.DiskID("mount", "/mnt/disk1") {
				t.Errorf("%s: volume %s is not a disk of the sample", path, v.External.Name)
			}
		default:
			t.Errorf("%s: neither a persistent nor an external volume", path)
		}
	}
	// Every other sample is at least well-formed JSON.
	for _, glob := range []string{"*.json", "scheduler/*.json"} {
		files, _ := filepath.Glob(filepath.Join(examplesDir, glob))
		for _, path := range files {
			var v any
			readMesosJSON(t, path, &v)
		}
	}
}

func readMesosJSON(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func writeMesosFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
}
