package main

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"certops/certcheck"
	"certops/inventory"
	"certops/reconciler/admin"
	"certops/schema"
	"certops/source"
)

func newInventoryCmd() *cobra.Command {
	var (
		live, token, fleet, format, forecast, ownerLabel string
		roots                                            []string
	)
	cmd := &cobra.Command{
		Use:   "inventory [DIR | --live URL]",
		Short: "List every certificate, or forecast the renewals to come",
		Long: `inventory lists every certificate of the repository in DIR (default the
current folder), or of a running daemon with --live (its admin API's
/api/v1/ssls): entity, chain, SNIs, file, issuer, subject, serial, key type and
size, not-before, not-after, days left, trust (public, private or untrusted,
as --roots and *.roots.pem decide), owner, labels, and the Git commit that last
changed the file when DIR is a Git working copy. It never prints a PEM block
or a key; a certificate behind a secret reference is listed by its reference.

The owner is the label named by --owner-label, else "owner", else "team".

--forecast 52w prints instead how many certificates expire per week and per
owner over the horizon, flags the weeks where renewals cluster (more than
twice the median), and the same under the CA/B Forum SC-081 schedule (200 days
from 2026-03-15, 100 from 2027-03-15, 47 from 2029-03-15), with each
certificate's lifetime once its next issuance is capped.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, err := inventory.ParseFormat(format)
			if err != nil {
				return fmt.Errorf("--format: %w", err)
			}
			weeks := 0
			if forecast != "" {
				if weeks, err = inventory.ParseHorizon(forecast); err != nil {
					return fmt.Errorf("--forecast: %w", err)
				}
			}
			if fleet != "" {
				return errors.New("--fleet: the fleet inventory is not implemented yet; use --live on a node")
			}
			if live != "" && len(args) > 0 {
				return errors.New("give either DIR or --live, not both")
			}
			private, err := certcheck.ReadRootFiles(roots)
			if err != nil {
				return err
			}
			now := time.Now()
			opts := inventory.Options{Now: now, OwnerLabel: ownerLabel}
			var records []inventory.Record
			from := live
			if live != "" {
				c := &admin.Client{Base: live}
				if token != "" {
					tok, err := admin.ReadSecretFile(token)
					if err != nil {
						return fmt.Errorf("--admin-token-file: %w", err)
					}
					c.Token = string(tok)
				}
				docs, err := c.SSLs(cmd.Context())
				if err != nil {
					return err
				}
				records = inventory.FromSSLs(docs, opts)
			} else {
				dir := "."
				if len(args) == 1 {
					dir = args[0]
				}
				from = dir
				fsys := os.DirFS(dir)
				pinned, err := certcheck.PinnedRoots(fsys, ".")
				if err != nil {
					return err
				}
				res, err := schema.Load(fsys, schema.Options{})
				if err != nil {
					return err
				}
				if res.Problems.Err() != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "certops: %s does not validate (run certops validate); listing the entities that read\n", dir)
				}
				opts.Checker = certcheck.New(certcheck.Options{Private: append(private, pinned...)})
				records = inventory.FromEntities(res.Entities, opts)
				commits, err := source.LastCommits(cmd.Context(), dir)
				if err != nil {
					return err
				}
				for i := range records {
					records[i].Commit = commits[records[i].File]
				}
			}
			out := cmd.OutOrStdout()
			if weeks > 0 {
				return inventory.NewForecast(records, now, weeks).Write(out, f)
			}
			return inventory.Write(out, records, f, inventory.WriteOptions{Source: from, Now: now})
		},
	}
	cmd.Flags().StringVar(&live, "live", "", "inventory a running daemon: its admin API (URL or host:port)")
	cmd.Flags().StringVar(&token, "admin-token-file", "", "bearer token file for --live")
	cmd.Flags().StringVar(&fleet, "fleet", "", "inventory a fleet (not implemented yet)")
	cmd.Flags().StringVar(&format, "format", "text", "output format: text, json, csv or markdown")
	cmd.Flags().StringVar(&forecast, "forecast", "", "forecast renewals over this horizon (52w, 90d) instead of listing")
	cmd.Flags().StringVar(&ownerLabel, "owner-label", "", `label that names a certificate's owner (default "owner", else "team")`)
	cmd.Flags().StringArrayVar(&roots, "roots", nil, "PEM bundle of private roots (repeatable)")
	return cmd
}
