package main

import (
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/localdisk-csi/localdisk/driver"
	"github.com/localdisk-csi/localdisk/driver/check"
)

// checkCmd runs `localdisk check`: serve's flags and pools file, one line
// per finding, exit status 0 when the plugin can serve and 1 when it cannot
// (a finding failed), 2 on a usage error.
func checkCmd(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("localdisk check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var opts driver.Options
	opts.AddFlags(fs)
	level := fs.String("log-level", "info", "accepted as serve takes it (check logs nothing)")
	format := fs.String("log-format", "text", "accepted as serve takes it (check logs nothing)")
	output := fs.String("output", "text", "output format: text or json")
	fs.StringVar(output, "o", "text", "short for --output")
	targetDir := fs.String("target-dir", "", "where the CO makes staging and target paths, for the propagation probe (default "+check.KubeletDir+" if it exists, else the state dir)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "localdisk check: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if _, err := newLogger(*level, *format, stderr); err != nil {
		fmt.Fprintf(stderr, "localdisk check: %v\n", err)
		return 2
	}
	write := check.WriteText
	switch *output {
	case "text":
	case "json":
		write = check.WriteJSON
	default:
		fmt.Fprintf(stderr, "localdisk check: --output %q: want text or json\n", *output)
		return 2
	}
	findings := driver.Check(opts, *targetDir)
	if err := write(stdout, findings); err != nil {
		fmt.Fprintf(stderr, "localdisk check: %v\n", err)
		return 1
	}
	if check.Failed(findings) {
		return 1
	}
	return 0
}
