package testutil

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

const (
	// BinEnv names an environment variable that, when set, gives the path
	// of a localdisk binary for BuildPlugin to return instead of building
	// one (for example a release build, or one built with -race).
	BinEnv = "LOCALDISK_BIN"

	// PluginVersion is the version that BuildPlugin stamps into the binary
	// it builds, so tests can compare it with GetPluginInfo's
	// vendor_version. A binary from LOCALDISK_BIN carries its own version.
	PluginVersion = "0.0.0-test"

	// versionVar is the linker symbol that holds the plugin's version.
	versionVar = "github.com/localdisk-csi/localdisk/driver.Version"

	// buildTimeout bounds `go build`.
	buildTimeout = 10 * time.Minute
)

// built is the result of the one build per test binary.
var built struct {
	once sync.Once
	dir  string // temporary directory holding the binary
	bin  string
	err  error
}

// BuildPlugin returns the path of a localdisk binary built from this
// module's ./cmd/localdisk with `go build`, building it the first time it
// is called in a test binary only. If LOCALDISK_BIN is set, it returns
// that path instead and builds nothing.
//
// The binary goes to a new directory under os.TempDir; call Main from
// TestMain to remove it when the tests are done.
func BuildPlugin(t testing.TB) string {
	t.Helper()
	if bin := os.Getenv(BinEnv); bin != "" {
		abs, err := filepath.Abs(bin)
		if err == nil {
			_, err = os.Stat(abs)
		}
		if err != nil {
			t.Fatalf("%s=%s: %v", BinEnv, bin, err)
		}
		return abs
	}
	built.once.Do(func() {
		built.dir, built.bin, built.err = buildPlugin()
	})
	if built.err != nil {
		t.Fatalf("building localdisk: %v", built.err)
	}
	return built.bin
}

// Main runs the tests of a package that uses BuildPlugin, then removes the
// binary it built, and exits. Call it from TestMain:
//
//	func TestMain(m *testing.M) { testutil.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	removeLauncher()
	if built.dir != "" {
		if err := os.RemoveAll(built.dir); err != nil {
			fmt.Fprintf(os.Stderr, "testutil: removing %s: %v\n", built.dir, err)
		}
	}
	os.Exit(code)
}

// buildPlugin builds ./cmd/localdisk, plainly, into a new temporary
// directory.
func buildPlugin() (dir, bin string, err error) { return buildVariant(BuildOptions{}) }

// goCommand finds the go tool: the one on PATH (normally the one running
// `go test`), else $GOROOT/bin/go.
func goCommand() (string, error) {
	path, err := exec.LookPath("go")
	if err == nil {
		return path, nil
	}
	if goroot := os.Getenv("GOROOT"); goroot != "" {
		path := filepath.Join(goroot, "bin", "go")
		if _, statErr := os.Stat(path); statErr == nil {
			return path, nil
		}
	}
	return "", fmt.Errorf("finding the go tool: %w", err)
}

// ModuleRoot returns the root of the Go module the tests run in: the
// nearest directory at or above the working directory (a test's package
// directory) that holds a go.mod file.
func ModuleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		} else if !errors.Is(err, os.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod at or above the working directory")
		}
		dir = parent
	}
}
