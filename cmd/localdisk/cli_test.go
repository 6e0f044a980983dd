package main

import (
	"bytes"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// runCLI runs `localdisk ARGS...` and returns its exit code, stdout and
// stderr.
func runCLI(args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// The commands of localdisk: `localdisk --help` must list each.
var wantCommands = []string{"check", "completion", "help", "mesos", "serve", "status", "version", "volumes"}

func TestHelpListsEveryCommand(t *testing.T) {
	var names []string
	for _, c := range newRootCmd(nil, nil).Commands() {
		if !c.Hidden {
			names = append(names, c.Name())
		}
	}
	slices.Sort(names)
	if !slices.Equal(names, wantCommands) {
		t.Errorf("commands %q, want %q (update wantCommands, the README and docs/configuration.md)", names, wantCommands)
	}
	// The README's table of commands has a row for each.
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if name != "help" && !regexp.MustCompile("(?m)^\\| (`[a-z]+`, )*`"+name+"`( \\||, )").Match(readme) {
			t.Errorf("README.md: no row for the command %s in the table of commands", name)
		}
	}
	for _, args := range [][]string{{"--help"}, {"-h"}, {"-help"}, {"help"}} {
		code, out, stderr := runCLI(args...)
		if code != 0 || (stderr != "") != (args[0] == "-help") { // -help: read as --help, with a warning
			t.Errorf("localdisk %q: exit %d, stderr %q", args, code, stderr)
		}
		for _, name := range wantCommands {
			if !regexpLine(out, "  "+name+" ") {
				t.Errorf("localdisk %q does not list %s:\n%s", args, name, out)
			}
		}
	}
}

// regexpLine says whether a line of text starts with prefix.
func regexpLine(text, prefix string) bool {
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(line, prefix) {
			return true
		}
	}
	return false
}

// Each command has its own flags and its own help, on stdout with exit 0.
func TestCommandHelp(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want []string
		not  []string
	}{
		{[]string{"serve", "-h"}, []string{"--endpoint", "--node-id", "--state-dir", "--log-level"}, []string{"--output", "--target-dir"}},
		{[]string{"serve", "--help"}, []string{"--health-interval", "--metrics-address"}, nil},
		{[]string{"check", "--help"}, []string{"--target-dir", "-o, --output", "--state-dir", "--config"}, nil},
		{[]string{"status", "-h"}, []string{"--endpoint", "-o, --output"}, []string{"--state-dir"}},
		{[]string{"volumes", "-h"}, []string{"--endpoint", "-o, --output"}, []string{"--config"}},
		{[]string{"version", "-h"}, []string{"-o, --output"}, []string{"--endpoint"}},
		{[]string{"help", "check"}, []string{"--target-dir"}, nil},
		{[]string{"mesos", "--help"}, []string{"profiles", "provider-config", "isolator-config", "--agent-config"}, nil},
		{[]string{"completion", "--help"}, []string{"bash", "zsh", "fish", "powershell"}, nil},
	} {
		code, out, stderr := runCLI(tc.args...)
		if code != 0 || stderr != "" {
			t.Errorf("localdisk %q: exit %d, stderr %q", tc.args, code, stderr)
		}
		for _, w := range tc.want {
			if !strings.Contains(out, w) {
				t.Errorf("localdisk %q does not show %q:\n%s", tc.args, w, out)
			}
		}
		for _, w := range tc.not {
			if strings.Contains(out, w) {
				t.Errorf("localdisk %q shows %q, which is not its flag:\n%s", tc.args, w, out)
			}
		}
	}
}

// A usage error exits with status 2 and says what is wrong on stderr,
// nothing on stdout.
func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"bogus"}, `localdisk: unknown command "bogus" for "localdisk"`},
		{[]string{"serve", "--nope"}, "localdisk serve: unknown flag: --nope"},
		{[]string{"--nope"}, "localdisk serve: unknown flag: --nope"},
		{[]string{"serve", "extra"}, `localdisk serve: unexpected arguments ["extra"]`},
		{[]string{"serve", "--log-level", "loud"}, "--log-level"},
		{[]string{"serve", "--log-format", "xml"}, `--log-format "xml"`},
		{[]string{"serve", "--health-interval", "often"}, `invalid argument "often" for "--health-interval"`},
		{[]string{"serve", "--endpoint"}, "flag needs an argument: --endpoint"},
		{[]string{"check", "-o", "yaml"}, `localdisk check: --output "yaml": want text or json`},
		{[]string{"check", "--log-level", "loud"}, "--log-level"},
		{[]string{"status", "--output", "yaml"}, `--output "yaml": want table or json`},
		{[]string{"volumes", "--endpoint", "/relative.sock"}, "want unix:///ABSOLUTE/PATH"},
		{[]string{"status", "x"}, "unexpected arguments"},
		{[]string{"version", "-o", "yaml"}, `localdisk version: --output "yaml": want text or json`},
		{[]string{"version", "extra"}, "unexpected arguments"},
		{[]string{"completion", "tcsh"}, `unknown command "tcsh" for "localdisk completion"`},
		{[]string{"completion"}, "which shell? bash, zsh, fish or powershell"},
	} {
		code, out, stderr := runCLI(tc.args...)
		if code != 2 || !strings.Contains(stderr, tc.want) || out != "" {
			t.Errorf("localdisk %q: exit %d, stdout %q, stderr %q; want exit 2 and %q", tc.args, code, out, stderr, tc.want)
		}
		if !strings.Contains(stderr, "--help' for usage") {
			t.Errorf("localdisk %q: stderr %q does not point to --help", tc.args, stderr)
		}
	}
}

// With no arguments, or flags only, localdisk serves: Mesos starts it so,
// configured by the environment. Without an endpoint, serve fails to start
// (exit status 1, not a usage error) and says which flag is missing.
func TestServeIsTheDefault(t *testing.T) {
	t.Setenv("CSI_ENDPOINT", "")
	t.Setenv("MESOS_AGENT_ID", "node-1")
	t.Setenv("LOCALDISK_STATE_DIR", t.TempDir())
	t.Setenv("LOCALDISK_CONFIG", "")
	for _, args := range [][]string{nil, {"--log-format", "json"}, {"serve"}} {
		code, out, stderr := runCLI(args...)
		if code != 1 || out != "" || !strings.Contains(stderr, "cannot start") || !strings.Contains(stderr, "--endpoint (or $CSI_ENDPOINT) is required") {
			t.Errorf("localdisk %q: exit %d, stdout %q, stderr %q; want serve's start failing on no endpoint", args, code, out, stderr)
		}
	}
	// A relative endpoint from the environment is serve's too.
	t.Setenv("CSI_ENDPOINT", "unix://relative.sock")
	if code, _, stderr := runCLI(); code != 1 || !strings.Contains(stderr, "want unix:///ABSOLUTE/PATH") {
		t.Errorf("localdisk with CSI_ENDPOINT=unix://relative.sock: exit %d, stderr %q", code, stderr)
	}
}

// The command lines of Go's flag package, with one dash before long flags,
// still parse, with a warning.
func TestSingleDashLongFlags(t *testing.T) {
	t.Setenv("CSI_ENDPOINT", "")
	t.Setenv("MESOS_AGENT_ID", "")
	dir := t.TempDir()
	for _, args := range [][]string{
		{"-node-id", "node-1", "-state-dir", dir, "-endpoint", "unix://relative.sock"},
		{"serve", "-node-id=node-1", "-state-dir=" + dir, "-endpoint=unix://relative.sock"},
	} {
		code, _, stderr := runCLI(args...)
		if code != 1 || !strings.Contains(stderr, "want unix:///ABSOLUTE/PATH") {
			t.Errorf("localdisk %q: exit %d, stderr %q; want serve to read the flags and refuse the endpoint", args, code, stderr)
		}
		if !strings.Contains(stderr, "localdisk: read -node-id") || !strings.Contains(stderr, "as --node-id") {
			t.Errorf("localdisk %q: no warning about the single-dash flag: %q", args, stderr)
		}
	}
	code, out, stderr := runCLI("mesos", "isolator-config", "-name", "ld", "-endpoint", "unix:///run/ld.sock")
	if code != 0 || !strings.Contains(out, `"name": "ld"`) || !strings.Contains(out, "unix:///run/ld.sock") {
		t.Errorf("mesos isolator-config -name ld: exit %d, stdout %q, stderr %q", code, out, stderr)
	}

	for _, tc := range []struct{ in, want []string }{
		// Shorthands, values and what follows -- stay as they are.
		{[]string{"check", "-o", "json", "-ojson", "--output=json"}, nil},
		{[]string{"serve", "--config", "-endpoint", "--node-id=-state-dir"}, nil},
		{[]string{"serve", "--", "-endpoint"}, nil},
		{[]string{"serve", "-h"}, nil},
		// An unknown single-dash flag is left to pflag to refuse.
		{[]string{"serve", "-nope"}, nil},
		{[]string{"check", "-target-dir", "/x", "-o", "json", "-log-level=debug", "-help"},
			[]string{"check", "--target-dir", "/x", "-o", "json", "--log-level=debug", "--help"}},
		{[]string{"mesos", "profiles", "-config", "-work-dir"}, []string{"mesos", "profiles", "--config", "-work-dir"}},
	} {
		want := tc.want
		if want == nil {
			want = tc.in
		}
		var warn bytes.Buffer
		if got := singleDashLongFlags(newRootCmd(nil, nil), tc.in, &warn); !slices.Equal(got, want) {
			t.Errorf("singleDashLongFlags(%q) = %q, want %q", tc.in, got, want)
		}
		if (warn.Len() > 0) != (tc.want != nil) {
			t.Errorf("singleDashLongFlags(%q) warned %q", tc.in, warn.String())
		}
	}
}

// `localdisk completion SHELL` writes cobra's completion script for SHELL.
func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		code, out, stderr := runCLI("completion", shell)
		if code != 0 || stderr != "" || len(out) < 200 || !strings.Contains(out, "localdisk") {
			t.Errorf("completion %s: exit %d, stderr %q, %d bytes of script:\n%.300s", shell, code, stderr, len(out), out)
		}
	}
	// The scripts ask the binary: it completes commands and flags.
	code, out, _ := runCLI("__complete", "v")
	if code != 0 || !strings.Contains(out, "version") || !strings.Contains(out, "volumes") || strings.Contains(out, "serve") {
		t.Errorf("__complete v: exit %d:\n%s", code, out)
	}
	code, out, _ = runCLI("__complete", "check", "--tar")
	if code != 0 || !strings.Contains(out, "--target-dir") {
		t.Errorf("__complete check --tar: exit %d:\n%s", code, out)
	}
}
