package testutil

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// BuildOptions say how BuildPluginWith builds the plugin.
type BuildOptions struct {
	// Tags are passed to `go build -tags`, e.g. "failpoints" for the crash
	// points of driver/failpoint.
	Tags []string
	// Race builds the plugin with the race detector (`go build -race`): it
	// then prints "WARNING: DATA RACE" to its log on a race.
	Race bool
}

// key identifies a build: the sorted, deduplicated tags and the race flag.
func (o BuildOptions) key() string {
	tags := slices.Clone(o.Tags)
	slices.Sort(tags)
	tags = slices.Compact(tags)
	return fmt.Sprintf("tags=%s race=%v", strings.Join(tags, ","), o.Race)
}

// variant is one cached build.
type variant struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

var variants struct {
	mu sync.Mutex
	m  map[string]*variant
}

// BuildPluginWith returns a localdisk binary built from ./cmd/localdisk with
// the given build tags and, if asked, the race detector. Each distinct set
// of options is built once per test binary; LOCALDISK_BIN is not used (it
// cannot say which tags its binary has). With no tags and no race it is
// BuildPlugin.
//
// Call MainWithBuilds from TestMain so that the binaries are removed when
// the tests end.
func BuildPluginWith(t testing.TB, o BuildOptions) string {
	t.Helper()
	if len(o.Tags) == 0 && !o.Race {
		return BuildPlugin(t)
	}
	variants.mu.Lock()
	if variants.m == nil {
		variants.m = map[string]*variant{}
	}
	v := variants.m[o.key()]
	if v == nil {
		v = &variant{}
		variants.m[o.key()] = v
	}
	variants.mu.Unlock()
	v.once.Do(func() { v.dir, v.bin, v.err = buildVariant(o) })
	if v.err != nil {
		t.Fatalf("building localdisk (%s): %v", o.key(), v.err)
	}
	return v.bin
}

// buildVariant builds ./cmd/localdisk with o into a new temporary directory.
// What is shipped is static (make build): so is what the tests run, but for
// -race, which needs cgo.
func buildVariant(o BuildOptions) (dir, bin string, err error) {
	args := []string{"-ldflags", "-X " + versionVar + "=" + PluginVersion}
	if len(o.Tags) > 0 {
		args = append(args, "-tags", strings.Join(o.Tags, ","))
	}
	if o.Race {
		args = append(args, "-race")
	}
	return goBuild("localdisk", "./cmd/localdisk", !o.Race, args...)
}

// goBuild builds the package pkg of this module (with the extra `go build`
// args) into a new temporary directory, as a binary called name; static
// (CGO_ENABLED=0) or with cgo.
func goBuild(name, pkg string, static bool, args ...string) (dir, bin string, err error) {
	root, err := ModuleRoot()
	if err != nil {
		return "", "", err
	}
	goTool, err := goCommand()
	if err != nil {
		return "", "", err
	}
	dir, err = os.MkdirTemp("", "localdisk-test-"+name+"-")
	if err != nil {
		return "", "", err
	}
	bin = filepath.Join(dir, name)
	args = append(append([]string{"build", "-o", bin}, args...), pkg)
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, goTool, args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if !static {
		cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		_ = os.RemoveAll(dir)
		return "", "", fmt.Errorf("go %s in %s: %w\n%s", strings.Join(args, " "), root, err, out)
	}
	return dir, bin, nil
}

// MainWithBuilds is Main for packages that also use BuildPluginWith: it
// runs the tests, removes every binary built, and exits.
func MainWithBuilds(m *testing.M) {
	code := m.Run()
	variants.mu.Lock()
	for _, v := range variants.m {
		if v.dir != "" {
			if err := os.RemoveAll(v.dir); err != nil {
				fmt.Fprintf(os.Stderr, "testutil: removing %s: %v\n", v.dir, err)
			}
		}
	}
	variants.mu.Unlock()
	removeLauncher()
	if built.dir != "" {
		if err := os.RemoveAll(built.dir); err != nil {
			fmt.Fprintf(os.Stderr, "testutil: removing %s: %v\n", built.dir, err)
		}
	}
	os.Exit(code)
}
