package uml

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		"":          "''",
		"a b":       "'a b'",
		"it's":      `'it'\''s'`,
		"$HOME;`x`": "'$HOME;`x`'",
	} {
		if got := quote(in); got != want {
			t.Errorf("quote(%q) = %s, want %s", in, got, want)
		}
	}
}

// TestRun boots UML with an ext4 disk, runs a shell that looks at it, and
// checks the output, the exit status and the kernel version.
func TestRun(t *testing.T) {
	res := Run(t, Options{
		Binary: "/bin/sh",
		Args: []string{"-c", `echo "hello from $(uname -r)"; echo "arg: $1"; ` +
			`grep " $UML_DISK_DATA " /proc/self/mountinfo; echo x >"$UML_DISK_DATA/f" && cat "$UML_DISK_DATA/f"; exit 7`,
			"sh", "it's quoted"},
		Env:   []string{"GREETING=hi there"},
		Disks: []Disk{{Name: "data", Size: 64 << 20, Format: []string{"mkfs.ext4", "-q", "-F"}}},
	})
	t.Logf("kernel %s; output:\n%s", res.Kernel, res.Output)
	if res.ExitCode != 7 {
		t.Errorf("exit code %d, want 7", res.ExitCode)
	}
	if res.Kernel == "" {
		t.Error("no kernel version")
	}
	for _, want := range []string{"hello from " + res.Kernel, "arg: it's quoted", " ext4 /dev/ubda ", "\nx\n"} {
		if !strings.Contains(res.Output, want) {
			t.Errorf("output lacks %q", want)
		}
	}
}

// TestRunSetupFailure: a disk that cannot be mounted is a harness error
// that names the step, and the program does not run.
func TestRunSetupFailure(t *testing.T) {
	paths := Require(t, "mkfs.ext4")
	_, err := run(t.TempDir(), Options{
		Binary: "/bin/true",
		Disks: []Disk{{Name: "bad", Size: 64 << 20, Format: []string{"mkfs.ext4", "-q", "-F"},
			MountOptions: "no_such_option"}},
	}, paths[0], "")
	if err == nil || !strings.Contains(err.Error(), "setup: mount bad") {
		t.Fatalf("run: %v, want a setup failure at mounting disk bad", err)
	}
}

// TestRunTimeout: a program that never ends gets UML killed at the
// timeout, and no process of that run is left.
func TestRunTimeout(t *testing.T) {
	paths := Require(t)
	dir := t.TempDir()
	_, err := run(dir, Options{Binary: "/bin/sleep", Args: []string{"3600"}, Timeout: 10 * time.Second},
		paths[0], "")
	if err == nil || !strings.Contains(err.Error(), "did not halt") {
		t.Fatalf("run: %v, want a timeout", err)
	}
	if left := processesMentioning(t, dir); len(left) > 0 {
		t.Errorf("processes left after the timeout: %v", left)
	}
}

// processesMentioning lists the PIDs of processes whose command line
// contains s.
func processesMentioning(t *testing.T, s string) []string {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []string
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), s) {
			pids = append(pids, e.Name())
		}
	}
	return pids
}
