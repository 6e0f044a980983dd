package main

import (
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// The binary that `make build` writes is what operators copy onto their
// nodes (CentOS 7's glibc 2.17 and up): it must be static, with no ELF
// interpreter and no shared library to load.
func TestMakeBuildIsStatic(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the plugin")
	}
	makeTool, err := exec.LookPath("make")
	if err != nil {
		t.Skip("no make on this machine (hack/install-test-deps.sh installs it)")
	}
	out := t.TempDir()
	cmd := exec.Command(makeTool, "--no-print-directory", "-C", "../..", "build", "OUTPUT="+out)
	// Even where the environment asks for cgo, the shipped build is static.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=1")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, b)
	}
	f, err := elf.Open(filepath.Join(out, "localdisk"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("make build wrote a dynamically linked binary: it has an ELF interpreter (PT_INTERP)")
		}
		if p.Type == elf.PT_DYNAMIC {
			t.Errorf("make build wrote a binary with a dynamic section")
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		t.Errorf("make build wrote a binary that needs shared libraries: %v", libs)
	}
}
