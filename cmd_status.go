package main

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"certops/reconciler/admin"
	"certops/reconciler/report"
)

func newStatusCmd() *cobra.Command {
	var adminURL, format string
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the status of a running daemon",
		Long: `status asks a running daemon's admin API (GET /api/v1/status) and prints a
summary: the applied revision and its age, the last attempt and its errors,
the entity count, the certificates expiring within the warning window and
the degraded entities. --format json prints the API's document as is.

--admin defaults to CERTOPS_ADMIN, else http://127.0.0.1:9180.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := bindEnv(cmd); err != nil {
				return err
			}
			if format != "text" && format != "json" {
				return fmt.Errorf("--format: %q is not one of text, json", format)
			}
			c := &admin.Client{Base: adminURL}
			st, err := c.Status(cmd.Context())
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if format == "json" {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			return report.Status(out, st.Status(), st.Ready, time.Now(), useColor(out))
		},
	}
	cmd.Flags().StringVar(&adminURL, "admin", "http://127.0.0.1:9180", "admin API of the daemon (URL or host:port)")
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json")
	return cmd
}
