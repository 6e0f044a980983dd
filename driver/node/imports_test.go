package node

import (
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// The node service is a thin adaptor: it reaches the kernel only through
// driver/mounts, and picks codes by hand only to validate requests.
func TestAdaptor_ImportsAndCodes(t *testing.T) {
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatal(err)
	}
	banned := []string{"golang.org/x/sys/unix", "github.com/localdisk-csi/localdisk/driver/mounter", "github.com/moby/sys/mountinfo"}
	picked := 0
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			continue
		}
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		picked += strings.Count(string(src), "codes.")
		f, err := parser.ParseFile(token.NewFileSet(), name, src, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			for _, b := range banned {
				if p == b || strings.HasPrefix(p, b+"/") {
					t.Errorf("%s imports %s", name, p)
				}
			}
		}
	}
	if picked > 15 {
		t.Errorf("%d codes picked by hand; at most 15, for request validation", picked)
	}
}
