package pool

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestParse_Native(t *testing.T) {
	yaml := `
pools:
- name: root
  kind: root
  path: /var/lib/localdisk/root
  capacity: 2Gi
  reserve: 0
- name: data
  kind: path
  path: /mnt/data
  capacity: 2048Mi
  snapshots: copy
- name: disks
  kind: mount
  listUnclaimed: true
  disks:
  - path: /dcos/volume0
  - path: /dcos/volume1
`
	c, err := Parse([]byte(yaml), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Pools) != 3 {
		t.Fatalf("pools = %d, want 3", len(c.Pools))
	}
	if got := c.Pools[0].Capacity.Bytes; got != 2<<30 {
		t.Errorf("root capacity = %d", got)
	}
	if got := c.Pools[1].Capacity.Bytes; got != 2048<<20 {
		t.Errorf("data capacity = %d", got)
	}
	if c.Pools[1].Snapshots != SnapshotsCopy || c.Pools[0].Snapshots != "" {
		t.Errorf("snapshots = %q, %q; want \"\", copy", c.Pools[0].Snapshots, c.Pools[1].Snapshots)
	}
	if !c.Pools[2].ListUnclaimed || len(c.Pools[2].Disks) != 2 {
		t.Errorf("disks pool = %+v", c.Pools[2])
	}
	// The same in JSON, with a byte count as a number.
	js := `{"pools":[{"name":"r","kind":"root","path":"/x","capacity":1048576}]}`
	if c, err = Parse([]byte(js), ""); err != nil || c.Pools[0].Capacity.Bytes != 1<<20 {
		t.Fatalf("json: %v %+v", err, c)
	}
}

func TestParse_Invalid(t *testing.T) {
	for _, tc := range []struct {
		name, config, want string
	}{
		{"an empty file is refused", ``, "empty"},
		{"no pools are refused", `pools: []`, "no pools"},
		{"an unknown field is refused", "pools:\n- name: a\n  kind: root\n  path: /a\n  colour: red", "colour"},
		{"an upper-case name is refused", "pools:\n- name: A\n  kind: root\n  path: /a", `pools[0] ("A")`},
		{"a long name is refused", "pools:\n- name: " + strings.Repeat("a", 33) + "\n  kind: root\n  path: /a", "at most 32"},
		{"a trailing dash is refused", "pools:\n- name: a-\n  kind: root\n  path: /a", "name must match"},
		{"a duplicate name is refused", "pools:\n- name: a\n  kind: root\n  path: /a\n- name: a\n  kind: path\n  path: /b", `pools[1] ("a"): duplicate`},
		{"an unknown kind is refused", "pools:\n- name: a\n  kind: lvm\n  path: /a", "unknown kind"},
		{"a relative path is refused", "pools:\n- name: a\n  kind: path\n  path: data", "absolute"},
		{"an unclean path is refused", "pools:\n- name: a\n  kind: path\n  path: /a/../b", "clean"},
		{"a path with a control character is refused", `{"pools":[{"name":"a","kind":"root","path":"/a\u007f"}]}`, "printable"},
		{"a disk path with a newline is refused", `{"pools":[{"name":"a","kind":"mount","disks":[{"path":"/d\n"}]}]}`, "printable"},
		{"the root directory is refused", "pools:\n- name: a\n  kind: path\n  path: /", "not /"},
		{"overlapping pools are refused", "pools:\n- name: a\n  kind: root\n  path: /a\n- name: b\n  kind: path\n  path: /a/b", "overlaps"},
		{"a mount pool without disks is refused", "pools:\n- name: a\n  kind: mount", "at least one disk"},
		{"a mount pool with capacity is refused", "pools:\n- name: a\n  kind: mount\n  capacity: 1Gi\n  disks:\n  - path: /d", "not path, capacity"},
		{"disks on a path pool are refused", "pools:\n- name: a\n  kind: path\n  path: /a\n  disks:\n  - path: /d", "mount pools only"},
		{"a disk shared by two pools is refused", "pools:\n- name: a\n  kind: mount\n  disks:\n  - path: /d\n- name: b\n  kind: mount\n  disks:\n  - path: /d", "overlaps"},
		{"a bad quantity is refused", "pools:\n- name: a\n  kind: root\n  path: /a\n  capacity: 2GB", "bad quantity"},
		{"a negative quantity is refused", "pools:\n- name: a\n  kind: root\n  path: /a\n  capacity: -1", "bad quantity"},
		{"snapshots other than copy are refused", "pools:\n- name: a\n  kind: path\n  path: /a\n  snapshots: reflink", `snapshots "reflink": want copy`},
		{"snapshots on a mount pool are refused", "pools:\n- name: a\n  kind: mount\n  snapshots: copy\n  disks:\n  - path: /d", "quota or snapshots"},
		{"an overflowing quantity is refused", "pools:\n- name: a\n  kind: root\n  path: /a\n  capacity: 9000000Pi", "overflows"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.config), "")
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("err = %v, want ErrInvalidConfig", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestQuantity_String(t *testing.T) {
	for q, want := range map[Quantity]string{0: "0", 1 << 30: "1Gi", 1536 << 20: "1536Mi", 1000: "1000"} {
		if got := q.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int64(q), got, want)
		}
	}
}

func TestParseMesos(t *testing.T) {
	res := `[{"name":"cpus","type":"SCALAR","scalar":{"value":4}},
	 {"name":"disk","type":"SCALAR","scalar":{"value":2048}},
	 {"name":"disk","type":"SCALAR","scalar":{"value":2048},"disk":{"source":{"type":"PATH","path":{"root":"/mnt/data"}}}},
	 {"name":"disk","type":"SCALAR","scalar":{"value":100},"role":"ops","disk":{"source":{"type":"PATH","path":{"root":"/mnt/data"}}}},
	 {"name":"disk","type":"SCALAR","scalar":{"value":2048},"disk":{"source":{"type":"MOUNT","mount":{"root":"/mnt/data2"}}}},
	 {"name":"disk","type":"SCALAR","scalar":{"value":4096},"disk":{"source":{"type":"MOUNT","mount":{"root":"/dcos/volume0"}}}}]`
	c, err := Parse([]byte(res), "/var/lib/mesos/slave")
	if err != nil {
		t.Fatal(err)
	}
	want := []struct {
		name, path string
		kind       Kind
		capacity   int64
	}{
		{"root", "/var/lib/mesos/slave", Root, 2048 * MiB},
		{"path-mnt-data", "/mnt/data", Path, 2148 * MiB},
		{"mount", "", Mount, 0},
	}
	if len(c.Pools) != len(want) {
		t.Fatalf("pools = %+v", c.Pools)
	}
	for i, w := range want {
		p := c.Pools[i]
		if p.Name != w.name || p.Path != w.path || p.Kind != w.kind || (w.capacity > 0 && int64(p.Capacity.Bytes) != w.capacity) {
			t.Errorf("pool %d = %+v, want %+v", i, p, w)
		}
	}
	m := c.Pools[2]
	if !m.ListUnclaimed || len(m.Disks) != 2 || m.Disks[0].Path != "/dcos/volume0" || m.Disks[1].Path != "/mnt/data2" {
		t.Errorf("mount pool = %+v", m)
	}
	// The ROOT pool under the agent's work dir offers its scalar, and keeps
	// the root disk's default reserve free (15%, at least 2 GiB): what it
	// offers is never more than the filesystem's free space minus that.
	if r := c.Pools[0]; r.Kind != Root || r.Reserve != nil || r.ReserveOf(100<<30) != 15<<30 || r.CapacityOf(100<<30) != 2048*MiB {
		t.Errorf("mesos root pool = %+v: reserve %d, capacity %d of 100Gi", r, r.ReserveOf(100<<30), r.CapacityOf(100<<30))
	}
	// Reordering the resources changes nothing.
	var arr []json.RawMessage
	json.Unmarshal([]byte(res), &arr)
	slices.Reverse(arr)
	rev, _ := json.Marshal(arr)
	c2, err := Parse(rev, "/var/lib/mesos/slave")
	if err != nil || !reflect.DeepEqual(c, c2) {
		t.Errorf("reordered resources give other pools: %v\n%+v\n%+v", err, c, c2)
	}
}

func TestParseMesos_Invalid(t *testing.T) {
	for _, tc := range []struct{ name, res, workDir, want string }{
		{"malformed JSON is refused", `[{"name":"disk",`, "/w", "mesos resources"},
		{"a BLOCK source is refused", `[{"name":"disk","type":"SCALAR","scalar":{"value":1},"disk":{"source":{"type":"BLOCK"}}}]`, "/w", `resources[0]: disk source type "BLOCK"`},
		{"a PATH source without root is refused", `[{"name":"cpus","scalar":{"value":1}},{"name":"disk","type":"SCALAR","scalar":{"value":1},"disk":{"source":{"type":"PATH"}}}]`, "/w", "resources[1]: PATH source"},
		{"a disk without scalar is refused", `[{"name":"disk","type":"RANGES"}]`, "/w", "resources[0]"},
		{"a root disk needs the work dir", `[{"name":"disk","type":"SCALAR","scalar":{"value":1}}]`, "", "--work-dir"},
		{"a relative root is refused", `[{"name":"disk","type":"SCALAR","scalar":{"value":1},"disk":{"source":{"type":"PATH","path":{"root":"data"}}}}]`, "/w", "absolute"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.res), tc.workDir)
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestMesosPathPoolName(t *testing.T) {
	long := MesosPathPoolName("/" + strings.Repeat("abc/", 20))
	if len(long) > MaxNameLen || !nameRE.MatchString(long) {
		t.Errorf("long name %q", long)
	}
	if a, b := MesosPathPoolName("/mnt/a-b"), MesosPathPoolName("/mnt/a/b"); a == b || !nameRE.MatchString(a) {
		t.Errorf("lossy names %q %q", a, b)
	}
	// A Mesos PATH pool's name prefixes its volume IDs: it never changes
	// across versions (computed by the code before driver/layout).
	for root, want := range map[string]string{
		"/mnt/data": "path-mnt-data", "/mnt/a-b": "path-mnt-a-b--6471c557", "/mnt/a/b": "path-mnt-a-b",
		"/" + strings.Repeat("abc/", 20): "path-abc-abc-abc-abc-a--ece52fca",
		"/var/lib/mesos/volumes/Data_1":  "path-var-lib-mesos-vol--1a111782", "rel": "path-rel--68b076be",
	} {
		if got := MesosPathPoolName(root); got != want {
			t.Errorf("MesosPathPoolName(%q) = %q, want %q (existing volume IDs would change)", root, got, want)
		}
	}
}

// optional is read in both native forms, refused on a ROOT pool and never
// set by the Mesos form.
func TestParse_Optional(t *testing.T) {
	for _, text := range []string{
		"pools:\n- name: d\n  kind: path\n  path: /mnt/d\n  optional: true\n- name: m\n  kind: mount\n  optional: yes\n  disks:\n  - path: /mnt/m\n",
		`{"pools":[{"name":"d","kind":"path","path":"/mnt/d","optional":true},{"name":"m","kind":"mount","optional":true,"disks":[{"path":"/mnt/m"}]}]}`,
	} {
		c, err := Parse([]byte(text), "")
		if err != nil || !c.Pools[0].Optional || !c.Pools[1].Optional {
			t.Errorf("%q: %v %+v", text, err, c)
		}
	}
	_, err := Parse([]byte("pools:\n- name: r\n  kind: root\n  path: /r\n  optional: true\n"), "")
	if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), "optional is for path and mount pools") {
		t.Errorf("optional root pool: %v", err)
	}
	c, err := Parse([]byte(`[{"name":"disk","type":"SCALAR","scalar":{"value":1},"disk":{"source":{"type":"PATH","path":{"root":"/mnt/p"}}}},{"name":"disk","type":"SCALAR","scalar":{"value":1},"disk":{"source":{"type":"MOUNT","mount":{"root":"/mnt/m"}}}}]`), "")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range c.Pools {
		if p.Optional {
			t.Errorf("the Mesos form made pool %s optional", p.Name)
		}
	}
}

// capacity and reserve take a percentage of the pool's filesystem; a bad
// one is refused with an error that names the pool.
func TestAmounts_Percentages(t *testing.T) {
	good := `pools:
- {name: r, kind: root, path: /r, reserve: 15%}
- {name: p, kind: path, path: /p, capacity: 50%, reserve: 12.5%}
- {name: q, kind: path, path: /q, capacity: 100%}
`
	c, err := Parse([]byte(good), "")
	if err != nil {
		t.Fatal(err)
	}
	const size = 100 << 30
	for i, want := range []struct{ reserve, capacity int64 }{
		{15 << 30, 85 << 30}, {size / 8, 50 << 30}, {0, 100 << 30},
	} {
		s := c.Pools[i]
		if got := s.ReserveOf(size); got != want.reserve {
			t.Errorf("%s: reserve of 100Gi = %d, want %d", s.Name, got, want.reserve)
		}
		if got := s.CapacityOf(size); got != want.capacity {
			t.Errorf("%s: capacity of 100Gi = %d, want %d", s.Name, got, want.capacity)
		}
	}
	for _, bad := range []string{"150%", "-1%", "%", "0%", "x%", "1e400%"} {
		for _, field := range []string{"reserve", "capacity"} {
			_, err := Parse([]byte(fmt.Sprintf("pools:\n- {name: mypool, kind: path, path: /p, %s: %q}\n", field, bad)), "")
			if err == nil || !strings.Contains(err.Error(), `"mypool"`) || !strings.Contains(err.Error(), field) {
				t.Errorf("%s: %s: %v, want an error naming the pool and the field", field, bad, err)
			}
		}
	}
	// The same in JSON.
	if _, err := Parse([]byte(`{"pools":[{"name":"mypool","kind":"path","path":"/p","reserve":"150%"}]}`), ""); err == nil ||
		!strings.Contains(err.Error(), `"mypool"`) {
		t.Errorf("json 150%%: %v", err)
	}
}

// A root pool that names no reserve keeps 15% of its filesystem free, at
// least 2 GiB; a path pool (a disk of its own) none.
func TestDefaultReserve(t *testing.T) {
	root, path := Spec{Kind: Root}, Spec{Kind: Path}
	for size, want := range map[int64]int64{100 << 30: 15 << 30, 10 << 30: 2 << 30, 1 << 30: 2 << 30} {
		if got := root.ReserveOf(size); got != want {
			t.Errorf("root pool on %d bytes: reserve %d, want %d", size, got, want)
		}
		if got := root.CapacityOf(size); got != max(size-want, 0) {
			t.Errorf("root pool on %d bytes: capacity %d", size, got)
		}
		if got := path.ReserveOf(size); got != 0 {
			t.Errorf("path pool: reserve %d, want 0", got)
		}
	}
	if d := Default("/var/lib/localdisk").Pools[0]; d.ReserveOf(100<<30) != 15<<30 {
		t.Errorf("the embedded default pool keeps %d of 100Gi", d.ReserveOf(100<<30))
	}
}
