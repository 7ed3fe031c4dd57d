package main

import "github.com/spf13/cobra"

func newDiffCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "diff",
		Short: "Show what a change to the repository would do (not built yet)",
		RunE:  notBuilt,
	}
}
