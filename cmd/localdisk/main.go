// Command localdisk is the localdisk CSI plugin: it serves a node's local
// disks as ROOT, PATH and MOUNT volumes over CSI v1.
//
//	localdisk [serve] --endpoint unix:///ABS/csi.sock --node-id NODE --state-dir DIR --config FILE
//	localdisk check [serve's flags] [--target-dir DIR] [--output text|json]
//	localdisk status|volumes [--endpoint unix:///ABS/csi.sock] [--output table|json]
//	localdisk version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/sirupsen/logrus"

	"github.com/localdisk-csi/localdisk/driver"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(args, stderr)
	case "check":
		return checkCmd(args, stdout, stderr)
	case "status", "volumes":
		return clientCmd(cmd, args, stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, driver.Version)
		return 0
	case "mesos":
		return mesosCmd(args, stdout, stderr)
	case "help":
		fmt.Fprintln(stdout, `usage: localdisk [serve|check|status|volumes|mesos|version] [flags]; localdisk CMD -h lists the flags
  serve    serve CSI on --endpoint (the default command)
  check    with serve's flags: can the plugin serve here? one line per finding; exit 0 yes, 1 no
  status   the pools of a running plugin
  volumes  the volumes of a running plugin
  mesos    print the documents a Mesos agent needs
  version  print the version`)
		return 0
	}
	fmt.Fprintf(stderr, "localdisk: unknown command %q (want serve, check, status, volumes, mesos or version)\n", cmd)
	return 2
}

func serve(args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("localdisk serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var opts driver.Options
	opts.AddFlags(fs)
	level := fs.String("log-level", "info", "log level: trace, debug, info, warn, error")
	format := fs.String("log-format", "text", "log format: text or json")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "localdisk: unexpected arguments %q\n", fs.Args())
		return 2
	}
	log, err := newLogger(*level, *format, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "localdisk: %v\n", err)
		return 2
	}
	d, err := driver.New(opts, log)
	if err != nil {
		log.WithError(err).Error("cannot start")
		return 1
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := d.Run(ctx); err != nil {
		log.WithError(err).Error("serve failed")
		return 1
	}
	log.Info("stopped")
	return 0
}

func newLogger(level, format string, out io.Writer) (*logrus.Logger, error) {
	log := logrus.New()
	log.SetOutput(out)
	lv, err := logrus.ParseLevel(level)
	if err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	log.SetLevel(lv)
	switch format {
	case "text":
		log.SetFormatter(&logrus.TextFormatter{FullTimestamp: true})
	case "json":
		log.SetFormatter(&logrus.JSONFormatter{})
	default:
		return nil, fmt.Errorf("--log-format %q: want text or json", format)
	}
	return log, nil
}
