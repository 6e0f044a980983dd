package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// defaultToServe makes serve the default command, as it was before cobra:
// with no arguments (Mesos starts the plugin so) or when the first argument
// is a flag other than a request for help, args are serve's.
func defaultToServe(args []string) []string {
	if len(args) == 0 {
		return []string{"serve"}
	}
	switch a := args[0]; {
	case a == "-h" || a == "--help" || a == "-help":
		return args // the commands
	case strings.HasPrefix(a, "-"):
		return append([]string{"serve"}, args...)
	}
	return args
}

// singleDashLongFlags rewrites -NAME and -NAME=VALUE, where NAME is a long
// flag of the command that args run, to --NAME: Go's flag package, which
// parsed localdisk's flags before pflag, took one dash as well as two and
// printed one in its help, so command lines written for it keep working.
// pflag reads -NAME as the shorthands N, A, M, E; localdisk's shorthands (-h,
// -o) spell no long flag, so no command line means both. Each rewrite is
// warned about on stderr. Values of flags (--config -x) and the arguments
// after -- are left alone.
func singleDashLongFlags(root *cobra.Command, args []string, stderr io.Writer) []string {
	cmd, i := root, 0
	for ; i < len(args) && !strings.HasPrefix(args[i], "-"); i++ {
		sub := subcommand(cmd, args[i])
		if sub == nil {
			break // an argument: cobra will say what is wrong with it
		}
		cmd = sub
	}
	cmd.InitDefaultHelpFlag()
	lookup := func(name string) *pflag.Flag {
		if f := cmd.Flags().Lookup(name); f != nil {
			return f
		}
		return cmd.InheritedFlags().Lookup(name)
	}
	out := slices.Clone(args)
	for ; i < len(out); i++ {
		a := out[i]
		if a == "--" {
			break
		}
		if len(a) < 2 || a[0] != '-' {
			continue
		}
		name, _, hasValue := strings.Cut(strings.TrimPrefix(a[1:], "-"), "=")
		var f *pflag.Flag
		switch {
		case strings.HasPrefix(a, "--"):
			f = lookup(name)
		case len(name) > 1 && lookup(name) != nil:
			f = lookup(name)
			out[i] = "-" + a
			fmt.Fprintf(stderr, "localdisk: read %s as -%s: long flags take two dashes (one is deprecated)\n", a, a)
		case len(a) == 2: // -o VALUE
			f = cmd.Flags().ShorthandLookup(a[1:])
			if f == nil {
				f = cmd.InheritedFlags().ShorthandLookup(a[1:])
			}
		default: // -oVALUE
			continue
		}
		if f != nil && !hasValue && f.NoOptDefVal == "" {
			i++ // the next argument is the flag's value
		}
	}
	return out
}

// subcommand is the command that name (or an alias) runs under cmd, or nil.
func subcommand(cmd *cobra.Command, name string) *cobra.Command {
	for _, c := range cmd.Commands() {
		if c.Name() == name || c.HasAlias(name) {
			return c
		}
	}
	return nil
}
