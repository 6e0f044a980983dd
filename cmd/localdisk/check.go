package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/localdisk-csi/localdisk/driver"
	"github.com/localdisk-csi/localdisk/driver/check"
)

const checkLong = `Say whether the plugin can serve here, one line per finding, without
changing anything. check takes serve's flags (the same command line with serve
replaced by check; --endpoint is not needed).

Exit status 0: it can serve (no fail); 1: it cannot; 2: a usage error.`

// newCheckCmd is `localdisk check`: serve's flags and pools file, one line
// per finding, exit status 0 when the plugin can serve and 1 when it cannot
// (a finding failed), 2 on a usage error.
func newCheckCmd() *cobra.Command {
	var opts driver.Options
	var level, format, output, targetDir string
	cmd := &cobra.Command{
		Use:                   "check [serve's flags] [--target-dir DIR] [-o text|json]",
		Short:                 "Can the plugin serve here? One line per finding; exit status 0 yes, 1 no",
		Long:                  checkLong,
		DisableFlagsInUseLine: true, // Use names them
		Args:                  noArgs,
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	opts.AddFlags(fs)
	fs.StringVar(&level, "log-level", "info", "accepted as serve takes it (check logs nothing)")
	fs.StringVar(&format, "log-format", "text", "accepted as serve takes it (check logs nothing)")
	fs.StringVarP(&output, "output", "o", "text", "output format: text or json")
	fs.StringVar(&targetDir, "target-dir", "", "where the CO makes staging and target paths, for the propagation probe (default "+check.KubeletDir+" if it exists, else the state dir)")
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if _, err := newLogger(level, format, cmd.ErrOrStderr()); err != nil {
			return err
		}
		write := check.WriteText
		switch output {
		case "text":
		case "json":
			write = check.WriteJSON
		default:
			return fmt.Errorf("--output %q: want text or json", output)
		}
		findings := driver.Check(opts, targetDir)
		if err := write(cmd.OutOrStdout(), findings); err != nil {
			return failed(err)
		}
		if check.Failed(findings) {
			return &exitError{code: 1}
		}
		return nil
	}
	return cmd
}
