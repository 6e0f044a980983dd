package pool

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/state"
)

// FuzzParse: no pools file, native or Mesos, makes Parse panic; a rejected
// one is ErrInvalidConfig; an accepted one validates and survives a round
// trip through its native JSON form unchanged.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"pools:\n- name: root\n  kind: root\n  path: /var/lib/localdisk/root\n  capacity: 10Gi\n",
		`{"pools":[{"name":"data","kind":"path","path":"/mnt/data","reserve":"1Gi"}]}`,
		"pools:\n- name: disks\n  kind: mount\n  listUnclaimed: true\n  disks:\n  - path: /mnt/d1\n  - device: /dev/sdb\n    fsType: xfs\n    mkfsOptions: [-K]\n  erase: zero\n",
		`[{"name":"disk","type":"SCALAR","scalar":{"value":1024}},{"name":"disk","type":"SCALAR","scalar":{"value":2048},"disk":{"source":{"type":"PATH","path":{"root":"/mnt/p"}}}},{"name":"disk","type":"SCALAR","scalar":{"value":4096},"disk":{"source":{"type":"MOUNT","mount":{"root":"/mnt/m"}}}},{"name":"cpus","type":"SCALAR","scalar":{"value":4}}]`,
		`[{"name":"disk","scalar":{"value":1e300}}]`,
		`[{"name":"disk","scalar":{"value":-1}}]`,
		"pools:\n- name: a\n  kind: root\n  path: /a\n  capacity: 9223372036854775807\n",
		"pools:\n- name: a\n  kind: root\n  path: /a/../b\n", "pools: [", "", "[", "\x00", "pools: ~",
		// JSON escapes that YAML cannot carry raw (found by fuzzing).
		`{"pools":[{"name":"root","kind":"root","path":"/0\u007f"}]}`, `{"pools":[{"name":"r","kind":"root","path":"/\uffff"}]}`,
	} {
		f.Add([]byte(s), "/var/lib/mesos")
	}
	f.Add([]byte(`[{"name":"disk","scalar":{}}]`), "/0\xcc") // a work dir that is not UTF-8
	f.Fuzz(func(t *testing.T, data []byte, workDir string) {
		c, err := Parse(data, workDir)
		if err != nil {
			if !errors.Is(err, ErrInvalidConfig) {
				t.Errorf("Parse rejected the file with %v, which is not ErrInvalidConfig", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a config that does not validate: %v", err)
		}
		if !utf8.Valid(data) || !utf8.ValidString(workDir) {
			return // JSON cannot carry such paths: no native form to compare
		}
		native, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		again, err := Parse(native, "")
		if err != nil {
			t.Fatalf("the native form of an accepted config is rejected: %v\n%s", err, native)
		}
		if !reflect.DeepEqual(again, c) {
			t.Errorf("round trip changed the config:\n%+v\n%+v", c, again)
		}
	})
}

// FuzzMesosNames: the pool names and disk volume IDs derived from paths are
// always valid and short enough, and distinct clean paths never share one.
func FuzzMesosNames(f *testing.F) {
	sum := sha256.Sum256([]byte("/X"))
	for _, p := range [][2]string{
		{"/mnt/data", "/mnt/data2"}, {"/mnt/a-b", "/mnt/a/b"}, {"/MNT", "/mnt"}, {"/a", "/a/"},
		{"/" + string(make([]byte, 100)), "/x"}, {"/é", "/e"}, {"/-", "/_"},
		// A lossless slug can spell a lossy one's hash suffix.
		{"/X", "/x/" + hex.EncodeToString(sum[:])[:8]},
	} {
		f.Add(p[0], p[1])
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		for _, p := range []string{a, b} {
			if !cleanAbs(p) {
				continue
			}
			if n := MesosPathPoolName(p); !nameRE.MatchString(n) || len(n) > MaxNameLen {
				t.Errorf("MesosPathPoolName(%q) = %q: not a valid pool name", p, n)
			}
			if id := layout.DiskID(MesosMountPool, p); !state.ValidID(id) {
				t.Errorf("DiskID(%q) = %q: not a valid volume ID", p, id)
			}
		}
		if !cleanAbs(a) || !cleanAbs(b) || a == b {
			return
		}
		if MesosPathPoolName(a) == MesosPathPoolName(b) {
			t.Errorf("PATH roots %q and %q get one pool name %q", a, b, MesosPathPoolName(a))
		}
		if layout.DiskID(MesosMountPool, a) == layout.DiskID(MesosMountPool, b) {
			t.Errorf("MOUNT disks %q and %q get one volume ID %q", a, b, layout.DiskID(MesosMountPool, a))
		}
	})
}

// cleanAbs: a path Validate accepts as a pool root or disk.
func cleanAbs(p string) bool { return filepath.IsAbs(p) && filepath.Clean(p) == p && p != "/" }
