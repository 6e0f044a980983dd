package uml

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/localdisk-csi/localdisk/test/testutil"
)

// installTimeout bounds hack/install-test-deps.sh; buildTimeout bounds
// `go test -c`.
const (
	installTimeout = 10 * time.Minute
	buildTimeout   = 10 * time.Minute
)

var installed struct {
	once sync.Once
	err  error
}

// Require returns the paths of the tools a UML run needs (the UML kernel,
// "linux", first), looked up on PATH and in the sbin directories. When one
// is missing: as root it runs hack/install-test-deps.sh once and looks
// again, failing the test if the tool is still missing; not as root it
// skips the test, unless CI=true, where it fails it (CI runs as root and
// must run these tests, not skip them).
func Require(t testing.TB, tools ...string) []string {
	t.Helper()
	tools = append([]string{"linux"}, tools...)
	paths, missing := lookAll(tools)
	if len(missing) == 0 {
		return paths
	}
	if os.Geteuid() != 0 {
		msg := fmt.Sprintf("user-mode Linux tests need %s (Debian: user-mode-linux, kmod, xfsprogs, e2fsprogs); "+
			"run hack/install-test-deps.sh as root", strings.Join(missing, ", "))
		if os.Getenv("CI") == "true" {
			t.Fatal(msg + " (CI=true: not skipping)")
		}
		t.Skip(msg)
	}
	installed.once.Do(func() { installed.err = installDeps() })
	if installed.err != nil {
		t.Fatalf("installing test dependencies for %s: %v", strings.Join(missing, ", "), installed.err)
	}
	paths, missing = lookAll(tools)
	if len(missing) > 0 {
		t.Fatalf("%s still missing after hack/install-test-deps.sh", strings.Join(missing, ", "))
	}
	return paths
}

func lookAll(tools []string) (paths, missing []string) {
	for _, tool := range tools {
		p, err := lookTool(tool)
		if err != nil {
			missing = append(missing, tool)
		}
		paths = append(paths, p)
	}
	return paths, missing
}

// lookTool finds a tool on PATH or in the sbin directories, which are not
// on every root PATH.
func lookTool(name string) (string, error) {
	if filepath.IsAbs(name) {
		if fi, err := os.Stat(name); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return "", fmt.Errorf("%s is not an executable file", name)
		}
		return name, nil
	}
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/local/sbin", "/usr/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found", name)
}

// installDeps runs the repository's hack/install-test-deps.sh.
func installDeps() error {
	root, err := testutil.ModuleRoot()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), installTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(root, "hack", "install-test-deps.sh"))
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("hack/install-test-deps.sh: %w: %s", err, out)
	}
	return nil
}

// BuildTestBinary compiles the tests of package pkg (an import path, or a
// directory relative to the module root such as "./driver/quota") with
// `go test -c`, statically (CGO_ENABLED=0) and without -race, into a
// temporary directory removed when the test ends, and returns the binary's
// path: a program to Run inside UML with -test.run.
func BuildTestBinary(t testing.TB, pkg string) string {
	t.Helper()
	root, err := testutil.ModuleRoot()
	if err != nil {
		t.Fatalf("BuildTestBinary: %v", err)
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out := filepath.Join(t.TempDir(), "pkg.test")
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "test", "-c", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go test -c %s: %v\n%s", pkg, err, msg)
	}
	return out
}
