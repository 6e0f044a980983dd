package check

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/localdisk-csi/localdisk/driver/mounter"
)

// fakeHost is a host with the given namespaces, marker files, cgroup,
// mount table and probe answer.
func fakeHost(selfNS, initNS string, files []string, cgroup string, t mounter.Table, probe func(string, string) (bool, error)) host {
	return host{
		readlink: func(p string) (string, error) {
			if strings.HasPrefix(selfNS, "ids:") {
				return "", os.ErrPermission // as for PID 1's without ptrace rights
			}
			switch p {
			case "/proc/self/ns/mnt":
				return selfNS, nil
			case "/proc/1/ns/mnt":
				return initNS, nil
			}
			return "", os.ErrNotExist
		},
		exists: func(p string) bool {
			for _, f := range files {
				if f == p {
					return true
				}
			}
			return false
		},
		readFile: func(p string) ([]byte, error) {
			switch {
			case p == "/proc/self/cgroup":
				return []byte(cgroup), nil
			case strings.HasSuffix(p, "/mountinfo") && strings.HasPrefix(selfNS, "ids:"):
				// ids:SELF:INIT: namespaces known by their root mount IDs
				ids := strings.Split(selfNS, ":")
				id := ids[1]
				if p == "/proc/1/mountinfo" {
					id = ids[2]
				}
				return []byte(id + " 1 254:0 / / rw - ext4 /dev/vda rw\n"), nil
			}
			return nil, os.ErrNotExist
		},
		mounts: func() (mounter.Table, error) { return t, nil },
		probe:  probe,
	}
}

func noProbe(string, string) (bool, error) { panic("the probe must not run") }

func TestPropagationVerdicts(t *testing.T) {
	dir := t.TempDir() // exists; no mount is made by a fake
	root := func(optional string) mounter.Table {
		return mounter.Table{{Mountpoint: "/", Optional: optional, FSType: "ext4"}}
	}
	const ns, other = "mnt:[1]", "mnt:[2]"
	for _, tc := range []struct {
		name  string
		h     host
		level Level
		want  string
	}{
		{"host", fakeHost(ns, ns, nil, "0::/user.slice\n", root(""), noProbe),
			OK, "not in a container: the host's mount namespace"},
		{"docker, shared", fakeHost(ns, ns, []string{"/.dockerenv"}, "", root("shared:5 master:1"), noProbe),
			Warn, "is shared (peer group 5)"},
		{"docker, slave", fakeHost(ns, ns, []string{"/.dockerenv"}, "", root("master:7"), noProbe),
			Warn, "receives the host's mounts (master:7) but is not shared"},
		{"podman, private", fakeHost(ns, ns, []string{"/run/.containerenv"}, "", root(""), noProbe),
			Warn, "is private: binds made there do not reach the host"},
		{"kubepods cgroup", fakeHost(ns, ns, nil, "4:memory:/kubepods/burstable/pod1/abc\n", root(""), noProbe),
			Warn, "its cgroup is 4:memory:/kubepods/burstable/pod1/abc"},
		{"host PID, seen", fakeHost(ns, other, nil, "", nil, func(d, m string) (bool, error) {
			if m != "/proc/1/mountinfo" {
				t.Errorf("probe looked in %s", m)
			}
			return true, nil
		}), OK, "is visible in PID 1's mount namespace"},
		{"host PID, ns links unreadable", fakeHost("ids:30:26", "", nil, "", nil, func(string, string) (bool, error) { return true, nil }),
			OK, "another root mount"},
		{"ns links unreadable, one root mount", fakeHost("ids:26:26", "", []string{"/.dockerenv"}, "", root(""), noProbe),
			Warn, "is private"},
		{"host PID, not seen", fakeHost(ns, other, nil, "", nil, func(string, string) (bool, error) { return false, nil }),
			Fail, "is not visible in PID 1's mount namespace"},
		{"host PID, no bind", fakeHost(ns, other, nil, "", nil, func(string, string) (bool, error) {
			return false, errors.New("cannot bind: operation not permitted")
		}), Fail, "cannot bind: operation not permitted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := propagation(tc.h, dir)
			if f.Level != tc.level || f.Subject != "propagation" || !strings.Contains(f.Message, tc.want) {
				t.Errorf("got %v, want %s with %q", f, tc.level, tc.want)
			}
			if tc.level == Warn && !strings.Contains(f.Message, "not verified") {
				t.Errorf("a finding from the local mount table must say what it could not verify: %v", f)
			}
		})
	}
}

func TestPeerGroups(t *testing.T) {
	for _, tc := range []struct{ in, shared, master string }{
		{"", "", ""},
		{"shared:1", "1", ""},
		{"master:3", "", "3"},
		{"shared:12 master:3 propagate_from:2", "12", "3"},
		{"unbindable", "", ""},
	} {
		if s, m := peerGroups(tc.in); s != tc.shared || m != tc.master {
			t.Errorf("peerGroups(%q) = %q, %q; want %q, %q", tc.in, s, m, tc.shared, tc.master)
		}
	}
}

func TestProbeDir(t *testing.T) {
	if got := ProbeDir("/x/kubelet", "/state"); got != "/x/kubelet" {
		t.Errorf("a given target dir must win, got %s", got)
	}
	want := "/state"
	if fi, err := os.Stat(KubeletDir); err == nil && fi.IsDir() {
		want = KubeletDir
	}
	if got := ProbeDir("", "/state"); got != want {
		t.Errorf("ProbeDir = %s, want %s", got, want)
	}
}

func TestWriteAndFailed(t *testing.T) {
	fs := []Finding{
		{OK, "kernel", "Linux 6.1"},
		{Warn, "pool data", "accounted"},
		{Fail, "state-dir", "read-only"},
	}
	var b bytes.Buffer
	if err := WriteText(&b, fs); err != nil {
		t.Fatal(err)
	}
	want := "ok    kernel     Linux 6.1\nwarn  pool data  accounted\nfail  state-dir  read-only\n"
	if b.String() != want {
		t.Errorf("text:\n%s\nwant:\n%s", b.String(), want)
	}
	if !Failed(fs) || Failed(fs[:2]) || Failed(nil) {
		t.Error("Failed must be true exactly when a finding failed")
	}
	b.Reset()
	if err := WriteJSON(&b, fs); err != nil {
		t.Fatal(err)
	}
	var back []Finding
	if err := json.Unmarshal(b.Bytes(), &back); err != nil || len(back) != 3 || back[2] != fs[2] {
		t.Errorf("json %s: %v %v", b.String(), back, err)
	}
	b.Reset()
	WriteJSON(&b, nil)
	if strings.TrimSpace(b.String()) != "[]" {
		t.Errorf("no findings in JSON: %q, want []", b.String())
	}
}

// TestShowsIn matches a mount by what it shows, not by where it is: the
// host sees a container's bind at another path.
func TestShowsIn(t *testing.T) {
	table := "36 35 98:0 /data/.localdisk-check-1/src /host/path/dst rw - ext4 /dev/sda1 rw\n"
	path := t.TempDir() + "/mountinfo"
	if err := os.WriteFile(path, []byte(table), 0o600); err != nil {
		t.Fatal(err)
	}
	for src, want := range map[mounter.Source]bool{
		{Major: 98, Minor: 0, Root: "/data/.localdisk-check-1/src"}: true,
		{Major: 98, Minor: 1, Root: "/data/.localdisk-check-1/src"}: false,
		{Major: 98, Minor: 0, Root: "/data/.localdisk-check-1"}:     false,
	} {
		if got, err := showsIn(path, src); err != nil || got != want {
			t.Errorf("showsIn(%v) = %v, %v; want %v", src, got, err, want)
		}
	}
}
