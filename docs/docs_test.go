package docs

import (
	"context"
	"flag"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/sirupsen/logrus"
	"google.golang.org/grpc"
	"sigs.k8s.io/yaml"

	"github.com/localdisk-csi/localdisk/driver"
	"github.com/localdisk-csi/localdisk/driver/metrics"
	"github.com/localdisk-csi/localdisk/driver/pool"
	"github.com/localdisk-csi/localdisk/driver/state"
	"github.com/localdisk-csi/localdisk/driver/volume"
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
	"serve":     "`localdisk serve`",
	"clientCmd": "`localdisk status` and `localdisk volumes`",
	"mesosCmd":  "`localdisk mesos`",
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

// rows returns the table rows of text whose first cell is `key`.
func rows(text, key string) []string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, "| `"+key+"` |") {
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
// literal name (fs.String("name", ...), fs.StringVar(&v, "name", ...), ...).
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
		methods[m] = true
		methods[m+"Var"] = true
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
					i := 0
					if strings.HasSuffix(sel.Sel.Name, "Var") {
						i = 1
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
					if len(call.Args) > i+1 {
						if d, ok := call.Args[i+1].(*ast.BasicLit); ok {
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
	pfs := flag.NewFlagSet("probe", flag.ContinueOnError)
	probe.AddFlags(pfs)
	pfs.VisitAll(func(f *flag.Flag) {
		for _, m := range envRE.FindAllStringSubmatch(f.Usage, -1) {
			t.Setenv(m[1], "")
		}
	})
	var opts driver.Options
	fs := flag.NewFlagSet("localdisk serve", flag.ContinueOnError)
	opts.AddFlags(fs)

	type want struct{ def, usage string }
	serve := map[string]want{}
	fs.VisitAll(func(f *flag.Flag) { serve[f.Name] = want{f.DefValue, f.Usage} })

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
		if f.fn == "serve" {
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
		rs := rows(sections["serve"], "--"+name)
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
	for _, k := range []string{volume.ParamPool, volume.ParamKind, volume.IgnoredPrefix + "..."} {
		if len(rows(params, k)) == 0 {
			t.Errorf("%s: no row for the parameter `%s`", configurationDoc, k)
		}
	}
	vctx := section(t, doc, configurationDoc, "`volume_context`")
	for _, k := range []string{volume.ParamPool, volume.ParamKind} {
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

var metricRE = regexp.MustCompile(`\blocaldisk_[a-z0-9_]+`)

// metricNames scrapes a metrics registry over a real volume manager, after
// one RPC went through its interceptor, and adds the names written in the
// package's source (a vector with no sample yet is not scraped).
func metricNames(t *testing.T) []string {
	t.Helper()
	dir := t.TempDir()
	log := logrus.New()
	log.SetOutput(io.Discard)
	vols, err := volume.New(filepath.Join(dir, "state"), pool.Default(filepath.Join(dir, "state")), logrus.NewEntry(log))
	if err != nil {
		t.Fatal(err)
	}
	defer vols.Close()
	m := metrics.New(vols)
	_, err = m.Interceptor()(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: "/csi.v1.Identity/Probe"},
		func(context.Context, any) (any, error) { return nil, nil })
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go m.Serve(ctx, l)
	resp, err := http.Get("http://" + l.Addr().String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, line := range strings.Split(string(body), "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[0] == "#" && f[1] == "HELP" && strings.HasPrefix(f[2], "localdisk_") {
			names[f[2]] = true
		}
	}
	srcs, err := filepath.Glob("../driver/metrics/*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range srcs {
		if strings.HasSuffix(src, "_test.go") {
			continue
		}
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		for _, q := range regexp.MustCompile(`"(localdisk_[a-z0-9_]+)"`).FindAllStringSubmatch(string(b), -1) {
			names[q[1]] = true
		}
	}
	var out []string
	for n := range names {
		out = append(out, n)
	}
	sort.Strings(out)
	if len(out) < 5 {
		t.Fatalf("only %d localdisk metrics found: %v", len(out), out)
	}
	return out
}

// TestMetricsDocumented checks that operations.md has a row for every
// metric localdisk registers, and that every localdisk_ name it uses (in
// the table and the alert rules) exists; the alert rules must be valid
// YAML with an expression per rule.
func TestMetricsDocumented(t *testing.T) {
	text := section(t, readDoc(t, operationsDoc), operationsDoc, "Monitoring")
	names := metricNames(t)
	for _, n := range names {
		if len(rows(text, n)) == 0 {
			t.Errorf("%s: the metric %s has no row in the Monitoring table", operationsDoc, n)
		}
	}
	known := map[string]bool{}
	for _, n := range names {
		for _, s := range []string{"", "_bucket", "_sum", "_count"} {
			known[n+s] = true
		}
	}
	for _, n := range metricRE.FindAllString(readDoc(t, operationsDoc), -1) {
		if !known[n] {
			t.Errorf("%s names %s, which localdisk does not export", operationsDoc, n)
		}
	}
	var rules struct {
		Groups []struct {
			Rules []struct {
				Alert string `json:"alert"`
				Expr  string `json:"expr"`
			} `json:"rules"`
		} `json:"groups"`
	}
	block := ""
	for _, b := range codeBlocks(text) {
		if strings.HasPrefix(b, "groups:") {
			block = b
		}
	}
	if block == "" {
		t.Fatalf("%s: no alert rules (a code block starting with groups:)", operationsDoc)
	}
	if err := yaml.Unmarshal([]byte(block), &rules); err != nil {
		t.Fatalf("%s: alert rules: %v", operationsDoc, err)
	}
	n := 0
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			n++
			if r.Alert == "" || !metricRE.MatchString(r.Expr) {
				t.Errorf("%s: alert rule %q has no name or no localdisk metric in %q", operationsDoc, r.Alert, r.Expr)
			}
		}
	}
	if n == 0 {
		t.Errorf("%s: the alert rules are empty", operationsDoc)
	}
}

// codeBlocks returns the contents of the fenced code blocks of a Markdown
// text.
func codeBlocks(text string) []string {
	var out []string
	var cur []string
	in := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			if in {
				out = append(out, strings.Join(cur, "\n"))
				cur = nil
			}
			in = !in
			continue
		}
		if in {
			cur = append(cur, line)
		}
	}
	return out
}

// prose returns a Markdown text without its fenced code blocks and inline
// code spans, where links and headings are not.
func prose(text string) []string {
	var out []string
	in := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			in = !in
			continue
		}
		if in {
			out = append(out, "")
			continue
		}
		out = append(out, inlineCode.ReplaceAllString(line, "code"))
	}
	return out
}

var (
	inlineCode = regexp.MustCompile("`[^`]*`")
	linkRE     = regexp.MustCompile(`\[[^\]]*\]\(([^)\s]+)(?:\s+"[^"]*")?\)`)
)

// anchors returns the GitHub anchors of a Markdown file's headings.
func anchors(text string) map[string]bool {
	out := map[string]bool{}
	seen := map[string]int{}
	in := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			in = !in
			continue
		}
		if in || !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.TrimSpace(strings.TrimLeft(line, "#"))
		var b strings.Builder
		for _, r := range strings.ToLower(h) {
			switch {
			case unicode.IsLetter(r) || unicode.IsDigit(r) || r == '-' || r == '_':
				b.WriteRune(r)
			case r == ' ':
				b.WriteByte('-')
			}
		}
		a := b.String()
		if n := seen[a]; n > 0 {
			out[a+"-"+strconv.Itoa(n)] = true
		} else {
			out[a] = true
		}
		seen[a]++
	}
	return out
}

// TestLinks checks that every relative link of docs/*.md and README.md
// names an existing file and, into a Markdown file, an existing heading.
func TestLinks(t *testing.T) {
	files, err := filepath.Glob("*.md")
	if err != nil {
		t.Fatal(err)
	}
	files = append(files, "../README.md")
	for _, file := range files {
		text := readDoc(t, file)
		for i, line := range prose(text) {
			for _, m := range linkRE.FindAllStringSubmatch(line, -1) {
				target := m[1]
				if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
					continue
				}
				where := file + ":" + strconv.Itoa(i+1)
				p, frag, _ := strings.Cut(target, "#")
				dest := file
				if p != "" {
					dest = filepath.Join(filepath.Dir(file), p)
					if _, err := os.Stat(dest); err != nil {
						t.Errorf("%s: link %s: %v", where, target, err)
						continue
					}
				}
				if frag == "" || !strings.HasSuffix(dest, ".md") {
					continue
				}
				if !anchors(readDoc(t, dest))[frag] {
					t.Errorf("%s: link %s: %s has no heading with anchor #%s", where, target, dest, frag)
				}
			}
		}
	}
}
