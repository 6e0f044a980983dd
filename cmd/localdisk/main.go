// Command localdisk is the localdisk CSI plugin: it serves a node's local
// disks as ROOT, PATH and MOUNT volumes over CSI v1.
//
//	localdisk [serve] --endpoint unix:///ABS/csi.sock --node-id NODE --state-dir DIR --config FILE
//	localdisk check [serve's flags] [--target-dir DIR] [-o text|json]
//	localdisk status|volumes [--endpoint unix:///ABS/csi.sock] [-o table|json]
//	localdisk mesos profiles|provider-config|isolator-config [flags]
//	localdisk version [-o text|json]
//	localdisk completion bash|zsh|fish|powershell
//
// The commands are cobra commands with pflag flags. serve is the default: with
// no arguments (as Mesos starts the plugin, configured by CSI_ENDPOINT and
// MESOS_AGENT_ID) or flags only. Exit status 0: done; 1: the command failed;
// 2: a usage error (unknown command or flag, bad flag value, extra argument).
package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run runs the command line args (without the program name) and returns the
// exit status.
func run(args []string, stdout, stderr io.Writer) int {
	root := newRootCmd(stdout, stderr)
	args = singleDashLongFlags(root, defaultToServe(args), stderr)
	root.SetArgs(args)
	cmd, err := root.ExecuteC()
	return exitStatus(cmd, err, stderr)
}

const rootLong = `localdisk serves a node's local disks as ROOT, PATH and MOUNT volumes over
CSI v1, for Mesos and Kubernetes.

serve is the default command: 'localdisk' with no arguments, or with flags
only, serves (Mesos starts it so, configured by $CSI_ENDPOINT and
$MESOS_AGENT_ID).

Exit status 0: done; 1: the command failed; 2: a usage error.`

// newRootCmd builds the command tree; the commands write to stdout and
// stderr.
func newRootCmd(stdout, stderr io.Writer) *cobra.Command {
	root := &cobra.Command{
		Use:   "localdisk",
		Short: "The localdisk CSI plugin: local disks as ROOT, PATH and MOUNT volumes",
		Long:  rootLong,
		// Errors are printed by run, which knows the exit status.
		SilenceErrors: true,
		SilenceUsage:  true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(newServeCmd(), newCheckCmd(),
		newClientCmd("status", "Status", "The pools of a running plugin"),
		newClientCmd("volumes", "Volumes", "The volumes of a running plugin"),
		newMesosCmd(), newVersionCmd())
	// cobra adds these when it executes; adding them now makes the tree
	// whole for singleDashLongFlags and the tests.
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	// cobra's completion prints its help, exit status 0, without a shell or
	// with an unknown one: make those usage errors like the others.
	if c := subcommand(root, "completion"); c != nil {
		c.RunE = func(*cobra.Command, []string) error {
			return errors.New("which shell? bash, zsh, fish or powershell")
		}
	}
	return root
}

// exitError ends a command with an exit status other than 2. err, if not
// nil, is printed after the command's name; nil: the command reported
// already (a failed check, serve's log).
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// failed is the error of a command that failed (exit status 1) for err.
func failed(err error) error { return &exitError{code: 1, err: err} }

// exitStatus prints err, if any, and returns the exit status: 0 without an
// error, the code of an exitError, and 2 for any other error, which is a
// usage error (cobra's or a command's own about its arguments).
func exitStatus(cmd *cobra.Command, err error, stderr io.Writer) int {
	if err == nil {
		return 0
	}
	name := "localdisk"
	if cmd != nil {
		name = cmd.CommandPath()
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintf(stderr, "%s: %v\n", name, ee.err)
		}
		return ee.code
	}
	fmt.Fprintf(stderr, "%s: %v\nRun '%s --help' for usage.\n", name, err, name)
	return 2
}

// noArgs is cobra.NoArgs for a command without subcommands.
func noArgs(_ *cobra.Command, args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("unexpected arguments %q", args)
	}
	return nil
}
