package main

import (
	"context"
	"fmt"
	"io"
	"os/signal"
	"syscall"

	"github.com/sirupsen/logrus"
	"github.com/spf13/cobra"

	"github.com/localdisk-csi/localdisk/driver"
)

const serveLong = `Serve CSI v1 (Identity, Controller and Node) and the operator API on
--endpoint until SIGTERM or SIGINT.

serve is the default command: 'localdisk' with no arguments, or with flags
only, serves. Mesos starts the plugin with no arguments, configured by
$CSI_ENDPOINT and $MESOS_AGENT_ID.`

// newServeCmd is `localdisk serve`.
func newServeCmd() *cobra.Command {
	var opts driver.Options
	var level, format string
	cmd := &cobra.Command{
		Use:   "serve [flags]",
		Short: "Serve CSI on --endpoint (the default command)",
		Long:  serveLong,
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return serve(opts, level, format, cmd.ErrOrStderr())
		},
	}
	fs := cmd.Flags()
	fs.SortFlags = false
	opts.AddFlags(fs)
	fs.StringVar(&level, "log-level", "info", "log level: trace, debug, info, warn, error")
	fs.StringVar(&format, "log-format", "text", "log format: text or json")
	return cmd
}

func serve(opts driver.Options, level, format string, stderr io.Writer) error {
	log, err := newLogger(level, format, stderr)
	if err != nil {
		return err // a usage error
	}
	d, err := driver.New(opts, log)
	if err != nil {
		log.WithError(err).Error("cannot start")
		return &exitError{code: 1}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := d.Run(ctx); err != nil {
		log.WithError(err).Error("serve failed")
		return &exitError{code: 1}
	}
	log.Info("stopped")
	return nil
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
