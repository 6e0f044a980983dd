package docs

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/localdisk-csi/localdisk/driver"
	"github.com/localdisk-csi/localdisk/driver/layout"
	"github.com/localdisk-csi/localdisk/driver/pool"
	"github.com/localdisk-csi/localdisk/driver/state"
)

// The documents this test holds to the code, relative to this directory.
const (
	configurationDoc = "configuration.md"
	operationsDoc    = "operations.md"
	architectureDoc  = "architecture.md"
	cmdDir           = "../cmd/localdisk"
)

// Sections of configuration.md that document each function of cmdDir that
// defines flags.
var flagSections = map[string]string{
	"newServeCmd":   "`localdisk serve`",
	"newClientCmd":  "`localdisk status` and `localdisk volumes`",
	"newMesosCmd":   "`localdisk mesos`",
	"newCheckCmd":   "`localdisk check`",
	"newVersionCmd": "`localdisk version`",
}

func readDoc(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// section returns the text under the heading "## title" of doc, up to the
// next heading of level 2, failing the test if there is no such heading.
func section(t *testing.T, doc, file, title string) string {
	t.Helper()
	var out []string
	in := false
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, "## ") {
			if in {
				break
			}
			in = line == "## "+title
			continue
		}
		if in {
			out = append(out, line)
		}
	}
	if !in && len(out) == 0 {
		t.Fatalf("%s: no section %q", file, "## "+title)
	}
	return strings.Join(out, "\n")
}

// rows returns the table rows of text whose first cell is `key`, or names
// it among others ("| `--output`, `-o` |").
func rows(text, key string) []string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) > 2 && cells[0] == "" && slices.Contains(strings.Split(strings.TrimSpace(cells[1]), ", "), "`"+key+"`") {
			out = append(out, line)
		}
	}
	return out
}

// A flag defined in the source of cmdDir.
type srcFlag struct {
	name, def, fn string
}

// cmdFlags finds every flag that the functions of cmdDir define with a
// literal name (pflag's fs.String("name", ...), fs.StringVar(&v, "name",
// ...), fs.StringVarP(&v, "name", "n", ...), ...).
func cmdFlags(t *testing.T) []srcFlag {
	t.Helper()
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, cmdDir, func(fi os.FileInfo) bool {
		return !strings.HasSuffix(fi.Name(), "_test.go")
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	methods := map[string]bool{}
	for _, m := range []string{"String", "Bool", "Int", "Int64", "Uint", "Uint64", "Float64", "Duration", "Func", "Var", "TextVar", "BoolFunc"} {
		for _, suffix := range []string{"", "Var", "P", "VarP"} {
			methods[m+suffix] = true
		}
	}
	var out []srcFlag
	for _, p := range pkgs {
		for _, f := range p.Files {
			for _, d := range f.Decls {
				fn, ok := d.(*ast.FuncDecl)
				if !ok || fn.Body == nil {
					continue
				}
				ast.Inspect(fn.Body, func(n ast.Node) bool {
					call, ok := n.(*ast.CallExpr)
					if !ok {
						return true
					}
					sel, ok := call.Fun.(*ast.SelectorExpr)
					if !ok || !methods[sel.Sel.Name] {
						return true
					}
					i := 0 // the name's argument
					if strings.HasSuffix(strings.TrimSuffix(sel.Sel.Name, "P"), "Var") {
						i = 1
					}
					def := i + 1 // the default's
					if strings.HasSuffix(sel.Sel.Name, "P") {
						def++ // after the shorthand
					}
					if len(call.Args) <= i {
						return true
					}
					lit, ok := call.Args[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						return true
					}
					name, err := strconv.Unquote(lit.Value)
					if err != nil {
						return true
					}
					sf := srcFlag{name: name, fn: fn.Name.Name}
					if len(call.Args) > def {
						if d, ok := call.Args[def].(*ast.BasicLit); ok {
							sf.def = d.Value
							if d.Kind == token.STRING {
								sf.def, _ = strconv.Unquote(d.Value)
							}
						}
					}
					out = append(out, sf)
					return true
				})
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("no flags found in %s: the parser no longer recognises them", cmdDir)
	}
	return out
}

var envRE = regexp.MustCompile(`\$([A-Z][A-Z0-9_]*)`)

// TestFlagsDocumented checks that every flag of `localdisk serve`
// (driver.Options.AddFlags and the flags of cmd/localdisk) has a row in the
// serve table of configuration.md with its default and its environment
// variable, and that every flag of the other commands has a row in its
// section.
func TestFlagsDocumented(t *testing.T) {
	doc := readDoc(t, configurationDoc)

	// AddFlags reads the environment for some defaults: find which
	// variables from the usage strings, clear them, and build the real
	// FlagSet with the defaults operators get.
	var probe driver.Options
	pfs := pflag.NewFlagSet("probe", pflag.ContinueOnError)
	probe.AddFlags(pfs)
	pfs.VisitAll(func(f *pflag.Flag) {
		for _, m := range envRE.FindAllStringSubmatch(f.Usage, -1) {
			t.Setenv(m[1], "")
		}
	})
	var opts driver.Options
	fs := pflag.NewFlagSet("localdisk serve", pflag.ContinueOnError)
	opts.AddFlags(fs)

	type want struct{ def, usage string }
	serve := map[string]want{}
	fs.VisitAll(func(f *pflag.Flag) { serve[f.Name] = want{f.DefValue, f.Usage} })

	sections := map[string]string{}
	for fn, title := range flagSections {
		sections[fn] = section(t, doc, configurationDoc, title)
	}
	for _, f := range cmdFlags(t) {
		title, ok := flagSections[f.fn]
		if !ok {
			t.Errorf("flag --%s is defined in func %s of %s, which no section of %s documents: add it to flagSections and the doc",
				f.name, f.fn, cmdDir, configurationDoc)
			continue
		}
		if f.fn == "newServeCmd" {
			serve[f.name] = want{f.def, ""}
			continue
		}
		if len(rows(sections[f.fn], "--"+f.name)) == 0 {
			t.Errorf("%s: section %q has no row for --%s", configurationDoc, title, f.name)
		}
	}
	if len(serve) < 5 {
		t.Fatalf("only %d serve flags found", len(serve))
	}
	for name, w := range serve {
		rs := rows(sections["newServeCmd"], "--"+name)
		if len(rs) != 1 {
			t.Errorf("%s: the serve table has %d rows for --%s, want 1", configurationDoc, len(rs), name)
			continue
		}
		row := rs[0]
		if w.def != "" && w.def != "false" && !strings.Contains(row, "`"+w.def+"`") {
			t.Errorf("%s: the row of --%s does not give its default `%s`: %s", configurationDoc, name, w.def, row)
		}
		for _, m := range envRE.FindAllStringSubmatch(w.usage, -1) {
			if !strings.Contains(row, m[1]) {
				t.Errorf("%s: the row of --%s does not name its environment variable %s: %s", configurationDoc, name, m[1], row)
			}
		}
	}
}

// docType is how configuration.md names the type of a pools-file field.
func docType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == reflect.TypeOf(pool.Quantity(0)):
		return "quantity"
	case t == reflect.TypeOf(pool.Amount{}):
		return "quantity or percentage"
	case t.Kind() == reflect.Slice:
		return "list"
	case t.Kind() == reflect.String:
		return "string"
	case t.Kind() == reflect.Bool:
		return "bool"
	}
	return t.Kind().String()
}

// jsonFields lists the JSON names of a struct's fields with their types.
func jsonFields(t *testing.T, v any) map[string]reflect.Type {
	t.Helper()
	out := map[string]reflect.Type{}
	rt := reflect.TypeOf(v)
	for i := range rt.NumField() {
		f := rt.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if name == "" {
			t.Fatalf("%s.%s has no json tag", rt.Name(), f.Name)
		}
		out[name] = f.Type
	}
	return out
}

// TestPoolFieldsDocumented checks that every field of the native pools file
// (pool.Config, pool.Spec, pool.DiskSpec) has a row in configuration.md
// giving its type.
func TestPoolFieldsDocumented(t *testing.T) {
	text := section(t, readDoc(t, configurationDoc), configurationDoc, "Pools file, native form")
	for _, v := range []any{pool.Config{}, pool.Spec{}, pool.DiskSpec{}} {
		for name, typ := range jsonFields(t, v) {
			rs := rows(text, name)
			if len(rs) == 0 {
				t.Errorf("%s: no row for the %T field `%s`", configurationDoc, v, name)
				continue
			}
			want := docType(typ)
			if !slices.ContainsFunc(rs, func(r string) bool {
				cells := strings.Split(r, "|")
				return len(cells) > 2 && strings.Contains(cells[2], want)
			}) {
				t.Errorf("%s: the row of `%s` does not give its type %q: %v", configurationDoc, name, want, rs)
			}
		}
	}
}

// TestParametersDocumented checks the CreateVolume parameters and the
// volume_context keys.
func TestParametersDocumented(t *testing.T) {
	doc := readDoc(t, configurationDoc)
	params := section(t, doc, configurationDoc, "Parameters (StorageClass, Mesos disk profile)")
	for _, k := range []string{layout.ParamPool, layout.ParamKind, layout.IgnoredParamPrefix + "..."} {
		if len(rows(params, k)) == 0 {
			t.Errorf("%s: no row for the parameter `%s`", configurationDoc, k)
		}
	}
	vctx := section(t, doc, configurationDoc, "`volume_context`")
	for _, k := range []string{layout.ContextPool, layout.ContextKind} {
		if len(rows(vctx, k)) == 0 {
			t.Errorf("%s: no row for the volume_context key `%s`", configurationDoc, k)
		}
	}
}

// TestRecordFieldsDocumented checks that architecture.md names every field
// of a volume record.
func TestRecordFieldsDocumented(t *testing.T) {
	text := section(t, readDoc(t, architectureDoc), architectureDoc, "State on disk")
	for name := range jsonFields(t, state.Record{}) {
		if !strings.Contains(text, "`"+name+"`") {
			t.Errorf("%s: the record field `%s` is not described", architectureDoc, name)
		}
	}
}
