package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"certops/certcheck"
	"certops/fleet"
	"certops/inventory"
	"certops/reconciler/admin"
	"certops/schema"
	"certops/source"
)

func newInventoryCmd() *cobra.Command {
	var (
		live, token, fleetName, format, forecast, ownerLabel string
		roots, trustedKeys                                   []string
		nf                                                   natsFlags
		timeout                                              time.Duration
	)
	cmd := &cobra.Command{
		Use:   "inventory [DIR | --live URL | --fleet NAME --nats URL]",
		Short: "List every certificate, or forecast the renewals to come",
		Long: `inventory lists every certificate of the repository in DIR (default the
current folder), or of a running daemon with --live (its admin API's
/api/v1/ssls): entity, chain, SNIs, file, issuer, subject, serial, key type and
size, not-before, not-after, days left, trust (public, private or untrusted,
as --roots and *.roots.pem decide; with --live, the daemon's verdict under its
roots), owner, labels, and the Git commit that last
changed the file when DIR is a Git working copy. It never prints a PEM block
or a key; a certificate behind a secret reference is listed by its reference.

--fleet NAME lists what the fleet's head manifest publishes, read from NATS
(--nats, or NATS_URL and the other variables of the nats CLI; --nats-* flags
win) without writing to it and without the data key: keys are never needed.
With --trusted-key the manifest's signature must verify (repeat the flag
during a key rotation); without, it is read unchecked, and said so. The
commit column is the publisher revision of the manifest that first carried
the entity as it is now (the commit that changed it, or a later one when the
publisher published several at once), found in the manifests the fleet keeps
(its last 64); it is empty when the entity is the same in all of them. Trust is judged under --roots only (*.roots.pem files do
not travel). The text and JSON forms also name the live nodes that serve the
manifest, verified.

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
			if fleetName != "" && (live != "" || len(args) > 0) {
				return errors.New("give one of DIR, --live and --fleet")
			}
			if live != "" && len(args) > 0 {
				return errors.New("give either DIR or --live, not both")
			}
			if fleetName == "" && (len(trustedKeys) > 0 || nf != (natsFlags{})) {
				return errors.New("--trusted-key and --nats* go with --fleet")
			}
			private, err := certcheck.ReadRootFiles(roots)
			if err != nil {
				return err
			}
			now := time.Now()
			opts := inventory.Options{Now: now, OwnerLabel: ownerLabel}
			var records []inventory.Record
			var fleetInfo *inventory.FleetInfo
			from := live
			if fleetName != "" {
				opts.Checker = certcheck.New(certcheck.Options{Private: private})
				from = "fleet " + fleetName
				if records, fleetInfo, err = fleetInventory(cmd.Context(), cmd.ErrOrStderr(), nf, fleetName, trustedKeys, timeout, opts); err != nil {
					return err
				}
			} else if live != "" {
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
				if fi, err := os.Stat(dir); err != nil {
					return err
				} else if !fi.IsDir() {
					return fmt.Errorf("%s is not a folder", dir)
				}
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
			return inventory.Write(out, records, f, inventory.WriteOptions{Source: from, Now: now, Fleet: fleetInfo})
		},
	}
	cmd.Flags().StringVar(&live, "live", "", "inventory a running daemon: its admin API (URL or host:port)")
	cmd.Flags().StringVar(&token, "admin-token-file", "", "bearer token file for --live")
	cmd.Flags().StringVar(&fleetName, "fleet", "", "inventory what a fleet publishes (its head manifest, read from NATS)")
	addNATSFlags(cmd.Flags(), &nf, true)
	cmd.Flags().StringArrayVar(&trustedKeys, "trusted-key", nil, "with --fleet: Ed25519 public key (PEM) that must have signed the manifest (repeatable)")
	cmd.Flags().DurationVar(&timeout, "timeout", 30*time.Second, "with --fleet: give up reading NATS after this long")
	cmd.Flags().StringVar(&format, "format", "text", "output format: text, json, csv or markdown")
	cmd.Flags().StringVar(&forecast, "forecast", "", "forecast renewals over this horizon (52w, 90d) instead of listing")
	cmd.Flags().StringVar(&ownerLabel, "owner-label", "", `label that names a certificate's owner (default "owner", else "team")`)
	cmd.Flags().StringArrayVar(&roots, "roots", nil, "PEM bundle of private roots (repeatable)")
	return cmd
}

// fleetInventory lists what the head manifest of fleet name publishes,
// read through the connection code of `certops fleet`. Each record's
// commit is the publisher revision of the manifest that first carried its
// entity's current blob (fleet.PublishedEntity.Changed), "" when the
// manifests kept cannot tell. The nodes that serve the manifest come from the fleet's node
// records; when those cannot be read the inventory is printed without.
func fleetInventory(ctx context.Context, stderr io.Writer, nf natsFlags, name string, trustedPaths []string,
	timeout time.Duration, opts inventory.Options) ([]inventory.Record, *inventory.FleetInfo, error) {
	var trusted []fleet.TrustedKey
	for _, p := range trustedPaths {
		k, err := fleet.LoadTrustedKey(p)
		if err != nil {
			return nil, nil, fmt.Errorf("--trusted-key: %w", err)
		}
		trusted = append(trusted, k)
	}
	conn, f, err := openFleetFlags(nf, name)
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	inv, err := f.ReadInventory(ctx, trusted)
	if err != nil && (errors.Is(err, context.DeadlineExceeded) || !conn.Connected()) {
		// With no server up, the client fails on its own buffer before
		// the deadline: say what happened rather than how it surfaced.
		return nil, nil, fmt.Errorf("fleet %s: no answer from NATS within %s (--timeout): %w", name, timeout, err)
	}
	if err != nil {
		return nil, nil, fleetError(name, err)
	}
	if !inv.Verified {
		fmt.Fprintf(stderr, "certops: fleet %s: the manifest's signature was not checked (give --trusted-key)\n", name)
	}
	es := make([]*schema.Entity, len(inv.Entities))
	changed := make(map[string]string, len(inv.Entities))
	for i, pe := range inv.Entities {
		es[i] = publishedEntity(pe)
		changed[pe.Doc.Name] = pe.Changed
	}
	records := inventory.FromEntities(es, opts)
	for i := range records {
		records[i].Commit = changed[records[i].Entity]
	}
	info := &inventory.FleetInfo{Name: name, Revision: inv.Revision, Sequence: inv.Sequence, Time: inv.Time,
		Signer: inv.Signer, Verified: inv.Verified}
	st, err := f.Status(ctx)
	if err != nil {
		fmt.Fprintf(stderr, "certops: fleet %s: the node records cannot be read: %v\n", name, err)
		return records, info, nil
	}
	info.Serving, info.Live = []string{}, len(st.Nodes)
	head := fleet.Head{Sequence: inv.Sequence}
	for _, n := range st.Nodes {
		if head.Converged(n) {
			info.Serving = append(info.Serving, n.Node)
		}
	}
	return records, info, nil
}

// publishedEntity is the schema entity of a published one, for
// inventory.FromEntities: its keys are references or blank, never read.
func publishedEntity(pe fleet.PublishedEntity) *schema.Entity {
	d := pe.Doc
	e := &schema.Entity{Name: d.Name, Type: schema.Type(d.Type), SNIs: d.SNIs, Labels: d.Labels, Protocols: d.Protocols,
		Pos: schema.Pos{File: pe.File}, Chains: []schema.Chain{{Cert: d.Cert, Key: d.Key}}}
	if e.Type == "" {
		e.Type = schema.TypeServer
	}
	for i, c := range d.Certs {
		ch := schema.Chain{Cert: c}
		if i < len(d.Keys) {
			ch.Key = d.Keys[i]
		}
		e.Chains = append(e.Chains, ch)
	}
	return e
}
