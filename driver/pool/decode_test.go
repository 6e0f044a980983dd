package pool

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestParse_Positions: a misspelt key, a duplicate key, a value of the
// wrong type and a pool or disk that does not validate name their line and
// column, in YAML and in JSON; Load names the file.
func TestParse_Positions(t *testing.T) {
	for _, tc := range []struct{ name, config, want string }{
		{"a misspelt key in YAML", "pools:\n- name: a\n  kind: root\n  path: /a\n  capacty: 1Gi\n",
			`line 5 column 3: unknown field "capacty"`},
		{"a misspelt disk key in YAML", "pools:\n- name: a\n  kind: mount\n  disks:\n  - path: /d\n    fstype: xfs\n",
			`line 6 column 5: unknown field "fstype"`},
		{"a duplicate key in YAML", "pools:\n- name: a\n  kind: root\n  kind: path\n  path: /a\n",
			`line 4 column 3: field "kind" set twice`},
		{"a bool of the wrong type in YAML", "pools:\n- name: a\n  kind: mount\n  listUnclaimed: maybe\n  disks:\n  - path: /d\n",
			`line 4 column 18: the string "maybe" is not true or false`},
		{"a list for a string in YAML", "pools:\n- name: a\n  kind: root\n  path: [/a]\n",
			`line 4 column 9: a list is not a string`},
		{"a bad quantity in YAML", "pools:\n- name: a\n  kind: root\n  path: /a\n  capacity: 2GB\n",
			`line 5 column 13: bad quantity "2GB"`},
		{"a number for the pools in YAML", "pools: 5\n", `line 1 column 8: the number 5 is not a list of pools`},
		{"a YAML syntax error", "pools:\n- name: a\n  kind: root\n path: /a\n", `line 3: did not find expected key`},
		{"a misspelt key in JSON", "{\n  \"pools\": [\n    {\"name\": \"a\", \"kind\": \"root\", \"path\": \"/a\",\n     \"capacty\": \"1Gi\"}\n  ]\n}\n",
			`line 4 column 6: unknown field "capacty"`},
		{"a key in the wrong case in JSON", `{"pools": [{"Name": "a", "kind": "root", "path": "/a"}]}`,
			`line 1 column 13: unknown field "Name"`},
		{"a duplicate key in JSON", "{\"pools\": [\n{\"name\": \"a\", \"kind\": \"root\", \"path\": \"/a\", \"name\": \"b\"}]}",
			`line 2 column 45: field "name" set twice`},
		{"a bool of the wrong type in JSON", "{\"pools\": [\n {\"name\": \"a\", \"kind\": \"mount\",\n  \"listUnclaimed\": \"yes\", \"disks\": [{\"path\": \"/d\"}]}]}",
			`line 3 column 20: the string "yes" is not true or false`},
		{"a bad quantity in JSON", "{\"pools\": [\n {\"name\": \"a\", \"kind\": \"root\", \"path\": \"/a\",\n  \"capacity\": true}]}",
			`line 3 column 15: bad quantity true`},
		{"a JSON syntax error", "{\"pools\": [\n {\"name\": \"a\" \"kind\": \"root\"}]}",
			`line 2 column 15: invalid character '"' after object key:value pair`},
		{"a duplicate pool name in YAML", "pools:\n- name: a\n  kind: root\n  path: /a\n- name: a\n  kind: path\n  path: /b\n",
			`line 5 column 3: pools[1] ("a"): duplicate pool name`},
		{"a bad disk in YAML", "pools:\n- name: a\n  kind: mount\n  disks:\n  - path: /d\n  - device: /x\n    fsType: xfs\n",
			`line 6 column 5: pools[0] ("a"): disks[1]: device "/x" must be under /dev`},
		{"a duplicate pool name in JSON", "{\"pools\": [\n {\"name\": \"a\", \"kind\": \"root\", \"path\": \"/a\"},\n {\"name\": \"a\", \"kind\": \"path\", \"path\": \"/b\"}]}",
			`line 3 column 2: pools[1] ("a"): duplicate pool name`},
		{"a bad disk in JSON", "{\"pools\": [\n {\"name\": \"a\", \"kind\": \"mount\", \"disks\": [\n  {\"path\": \"/d\"},\n  {\"device\": \"/x\", \"fsType\": \"xfs\"}]}]}",
			`line 4 column 3: pools[0] ("a"): disks[1]: device "/x" must be under /dev`},
		{"a Mesos syntax error", "[\n {\"name\":\"disk\",\n  \"scalar\":{\"value\":1}},]",
			`mesos resources: line 3 column 25: invalid character ']'`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.config), "/w")
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want ErrInvalidConfig with %q", err, tc.want)
			}
		})
	}
	path := filepath.Join(t.TempDir(), "pools.yaml")
	if err := os.WriteFile(path, []byte("pools:\n- name: a\n  kind: root\n  capacty: 1Gi\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(path, "")
	if want := path + `: invalid pool configuration: line 4 column 3: unknown field "capacty"`; err == nil || err.Error() != want {
		t.Errorf("Load: %v, want %s", err, want)
	}
}

// legacyParse is how the native form was read before go.yaml.in/yaml/v3:
// YAML to JSON, then a strict JSON decode.
func legacyParse(data []byte) (*Config, error) {
	var c Config
	if err := yaml.UnmarshalStrict(data, &c); err != nil {
		return nil, err
	}
	return &c, c.Validate()
}

// TestParse_Examples: every pools file shipped or documented parses as it
// did with the YAML-to-JSON decoder, in its YAML form and its JSON form.
func TestParse_Examples(t *testing.T) {
	root := filepath.Join("..", "..")
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	examples := map[string]string{"deploy/mesos/pools.yaml": read("deploy/mesos/pools.yaml")}
	var cm struct {
		Data map[string]string `json:"data"`
	}
	if err := yaml.Unmarshal([]byte(read("deploy/kubernetes/configmap.yaml")), &cm); err != nil || cm.Data["pools.yaml"] == "" {
		t.Fatalf("configmap.yaml: %v, no pools.yaml", err)
	}
	examples["deploy/kubernetes/configmap.yaml"] = cm.Data["pools.yaml"]
	block := regexp.MustCompile("(?s)```(?:yaml|json)\n(.*?)```")
	for _, doc := range []string{"README.md", "docs/configuration.md", "docs/mesos.md", "docs/kubernetes.md", "docs/operations.md"} {
		for i, m := range block.FindAllStringSubmatch(read(doc), -1) {
			if b := strings.TrimSpace(m[1]); strings.HasPrefix(b, "pools:") || strings.HasPrefix(b, `{"pools"`) {
				examples[doc+"#"+string(rune('a'+i))] = m[1]
			}
		}
	}
	if len(examples) < 4 {
		t.Fatalf("only %d examples found", len(examples))
	}
	for name, text := range examples {
		got, err := Parse([]byte(text), "")
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		want, err := legacyParse([]byte(text))
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: parsed as %+v, the YAML-to-JSON decoder gives %+v (%v)", name, got, want, err)
		}
		js, err := yaml.YAMLToJSON([]byte(text))
		if err != nil {
			t.Fatal(err)
		}
		if again, err := Parse(js, ""); err != nil || !reflect.DeepEqual(again, got) {
			t.Errorf("%s: its JSON form parses as %+v (%v), want %+v", name, again, err, got)
		}
	}
	t.Logf("%d examples", len(examples))
}
