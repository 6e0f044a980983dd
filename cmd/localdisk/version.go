package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/localdisk-csi/localdisk/driver"
)

// newVersionCmd is `localdisk version`.
func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  noArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), driver.Version)
		},
	}
}
