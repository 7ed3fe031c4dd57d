package main

import "github.com/spf13/cobra"

func newValidateCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "validate [DIR]",
		Short: "Validate a repository of SSL entity files (not built yet)",
		Args:  cobra.MaximumNArgs(1),
		RunE:  notBuilt,
	}
}
