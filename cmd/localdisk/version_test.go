package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

func TestReadVersion(t *testing.T) {
	spec := &debug.Module{Path: csiSpecModule, Version: "v1.13.0"}
	for _, tc := range []struct {
		name    string
		version string
		bi      *debug.BuildInfo
		want    versionInfo
	}{
		{"no build info", "dev", nil, versionInfo{Version: "dev", GitRevision: unknown, CSISpecVersion: unknown}},
		{"make build", "v0.2.0-3-gabcdef1-dirty", &debug.BuildInfo{GoVersion: "go1.26.8",
			Main: debug.Module{Version: "(devel)"}, Deps: []*debug.Module{spec},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abcdef1234"}, {Key: "vcs.modified", Value: "true"},
				{Key: "vcs.time", Value: "2026-12-01T10:00:00Z"}}},
			versionInfo{Version: "v0.2.0-3-gabcdef1-dirty", GitRevision: "abcdef1234", GitDirty: ptr(true),
				GitCommitTime: "2026-12-01T10:00:00Z", GoVersion: "go1.26.8", CSISpecVersion: "v1.13.0"}},
		{"go build in a clone", "dev", &debug.BuildInfo{GoVersion: "go1.26.8",
			Main: debug.Module{Version: "v0.1.1-0.20261201100000-abcdef123456+dirty"}, Deps: []*debug.Module{spec},
			Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "abcdef1234567890"}, {Key: "vcs.modified", Value: "false"}}},
			versionInfo{Version: "v0.1.1-0.20261201100000-abcdef123456+dirty", GitRevision: "abcdef1234567890",
				GitDirty: ptr(false), GoVersion: "go1.26.8", CSISpecVersion: "v1.13.0"}},
		{"go install @v1.2.3", "dev", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"},
			Deps: []*debug.Module{{Path: csiSpecModule, Version: "v1.12.0", Replace: &debug.Module{Version: "v1.13.0"}}}},
			versionInfo{Version: "v1.2.3", GitRevision: unknown, GoVersion: "go1.26.8", CSISpecVersion: "v1.13.0"}},
		{"go install @pseudo-version", "", &debug.BuildInfo{GoVersion: "go1.26.8",
			Main: debug.Module{Version: "v0.0.0-20261201100000-0123456789ab"}},
			versionInfo{Version: "v0.0.0-20261201100000-0123456789ab", GitRevision: "0123456789ab",
				GoVersion: "go1.26.8", CSISpecVersion: unknown}},
		{"-buildvcs=false", "dev", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			versionInfo{Version: "dev", GitRevision: unknown, GoVersion: "go1.26.8", CSISpecVersion: unknown}},
	} {
		got := readVersion(tc.version, tc.bi)
		if tc.bi == nil {
			tc.want.GoVersion = got.GoVersion
		}
		tc.want.Platform = got.Platform
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(tc.want)
		if string(g) != string(w) {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, g, w)
		}
	}
	for v, rev := range map[string]string{
		"v1.2.3": "", "v1.2.4-0.20261201100000-0123456789ab": "0123456789ab",
		"v1.2.3-pre.0.20261201100000-0123456789ab+incompatible": "0123456789ab", "v1.2.3-rc.1-0123456789ab": "",
	} {
		if got := pseudoRevision(v); got != rev {
			t.Errorf("pseudoRevision(%q) = %q, want %q", v, got, rev)
		}
	}
}

func ptr[T any](v T) *T { return &v }

// TestVersionText: the version alone on the first line (scripts read it).
func TestVersionText(t *testing.T) {
	code, out, stderr := runCLI("version")
	lines := strings.Split(out, "\n")
	if code != 0 || stderr != "" || len(lines) < 5 || strings.Contains(lines[0], " ") || lines[0] == "" {
		t.Fatalf("version: exit %d, stderr %q:\n%s", code, stderr, out)
	}
	for _, w := range []string{"git revision:", "git dirty:", "go:", "CSI spec:      v1."} {
		if !strings.Contains(out, w) {
			t.Errorf("version does not say %q:\n%s", w, out)
		}
	}
	var v versionInfo
	code, out, _ = runCLI("version", "-o", "json")
	if err := json.Unmarshal([]byte(out), &v); err != nil || code != 0 || v.Version != lines[0] || !strings.HasPrefix(v.CSISpecVersion, "v1.") {
		t.Errorf("version -o json: exit %d, %v:\n%s", code, err, out)
	}
}

// TestVersionOfPlainGoBuild builds the plugin as `go build` does by default
// in a git clone of this work tree, and reads `version -o json`: the git
// revision is HEAD's, dirty when the work tree is (and after a change to a
// tracked file), and unknown (not another commit's) with -buildvcs=false.
//
// The build is in a clone because the Go toolchain finds no repository in a
// linked git worktree, whose .git is a file (golang/go#58218): there a plain
// go build stamps no revision, and the binary says it is unknown. The clone
// is of HEAD with this work tree's files copied over it (changes, untracked
// files, deletions), so it builds the code under test.
func TestVersionOfPlainGoBuild(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the plugin three times")
	}
	gitTool, err := exec.LookPath("git")
	if err != nil {
		t.Skip("no git")
	}
	top, err := exec.Command(gitTool, "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Skipf("not in a git work tree: %v", err)
	}
	tree := strings.TrimSpace(string(top))
	rev := strings.TrimSpace(sh(t, tree, gitTool, "rev-parse", "HEAD"))
	dirty := strings.TrimSpace(sh(t, tree, gitTool, "status", "--porcelain")) != ""
	src := cloneWorkTree(t, gitTool, tree, rev)

	// -buildvcs=auto is go build's default, given in case GOFLAGS says
	// otherwise (this machine's go env may).
	v := buildVersion(t, src, "-buildvcs=auto")
	if v.GitRevision != rev || v.GitDirty == nil || *v.GitDirty != dirty || v.GitCommitTime == "" ||
		v.Version == "dev" || v.Version == "" || strings.HasSuffix(v.Version, "+dirty") != dirty {
		t.Errorf("a plain go build of %s says %+v; want revision %s, dirty %v, a commit time and the module's version", src, v, rev, dirty)
	}
	readme := filepath.Join(src, "README.md")
	data, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(readme, append(data, "\nchanged\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	v = buildVersion(t, src, "-buildvcs=auto")
	if v.GitRevision != rev || v.GitDirty == nil || !*v.GitDirty || !strings.HasSuffix(v.Version, "+dirty") {
		t.Errorf("a plain go build of a changed work tree says %+v; want revision %s, dirty", v, rev)
	}
	v = buildVersion(t, src, "-buildvcs=false")
	if v.GitRevision != unknown || v.GitDirty != nil || v.GitCommitTime != "" || v.Version != "dev" {
		t.Errorf("a go build -buildvcs=false says %+v; want the revision and dirty flag unknown, version dev", v)
	}
}

// cloneWorkTree clones the repository of the work tree at rev (its HEAD)
// into a temporary directory, then makes the clone's files the work tree's.
func cloneWorkTree(t *testing.T, gitTool, tree, rev string) string {
	t.Helper()
	src := filepath.Join(t.TempDir(), "localdisk")
	sh(t, "", gitTool, "clone", "--quiet", "--shared", "--no-checkout", tree, src)
	sh(t, src, gitTool, "-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", rev)
	files := sh(t, tree, gitTool, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	for _, f := range strings.Split(strings.TrimRight(files, "\x00"), "\x00") {
		data, err := os.ReadFile(filepath.Join(tree, f))
		if errors.Is(err, os.ErrNotExist) {
			err = os.Remove(filepath.Join(src, f)) // deleted in the work tree
		} else if err == nil {
			to := filepath.Join(src, f)
			if err = os.MkdirAll(filepath.Dir(to), 0o755); err == nil {
				err = os.WriteFile(to, data, 0o644)
			}
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	return src
}

// buildVersion builds ./cmd/localdisk of the module at src with go build
// FLAGS and returns what its `version -o json` says.
func buildVersion(t *testing.T, src string, flags ...string) versionInfo {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
	}
	bin := filepath.Join(t.TempDir(), "localdisk")
	sh(t, src, goTool, append(append([]string{"build", "-o", bin}, flags...), "./cmd/localdisk")...)
	out := sh(t, "", bin, "version", "-o", "json")
	var v versionInfo
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("version -o json: %v\n%s", err, out)
	}
	if v.CSISpecVersion == unknown || v.GoVersion == "" {
		t.Errorf("version -o json: %s", out)
	}
	return v
}

// sh runs name ARGS in dir (empty: the current directory) and returns its
// stdout, failing the test if it fails.
func sh(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %q: %v\n%s", name, args, err, stderr.String())
	}
	return string(out)
}
