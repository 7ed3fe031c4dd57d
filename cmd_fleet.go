package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"certops/fleet"
	"certops/gateway"
	"certops/reconciler"
	"certops/reconciler/admin"
)

// natsFlags are the NATS connection flags shared by publish, fleet and a
// fleet node's run; unset ones fall back to the nats CLI's variables
// (NATS_URL, NATS_CREDS, ...): flags win.
type natsFlags struct {
	url, creds, user, password, ca, cert, key string
}

func addNATSFlags(fl *pflag.FlagSet, f *natsFlags, withURL bool) {
	if withURL {
		fl.StringVar(&f.url, "nats", "", "NATS server URLs, comma-separated (default: $NATS_URL)")
	}
	fl.StringVar(&f.creds, "nats-creds", "", "NATS credentials file (default: $NATS_CREDS)")
	fl.StringVar(&f.user, "nats-user", "", "NATS user (default: $NATS_USER)")
	fl.StringVar(&f.password, "nats-password", "", "NATS password (default: $NATS_PASSWORD)")
	fl.StringVar(&f.ca, "nats-ca", "", "PEM file of CAs that verify the NATS servers (default: $NATS_CA)")
	fl.StringVar(&f.cert, "nats-cert", "", "client certificate for NATS mutual TLS (default: $NATS_CERT)")
	fl.StringVar(&f.key, "nats-key", "", "private key of --nats-cert (default: $NATS_KEY)")
}

// connOptions merges the flags over the environment.
func (f natsFlags) connOptions(urls []string, name string) fleet.ConnOptions {
	o := fleet.ConnOptionsFromEnv(os.Getenv)
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	if len(urls) > 0 {
		o.URLs = urls
	} else if f.url != "" {
		o.URLs = fleet.SplitURLs(f.url)
	}
	set(&o.Creds, f.creds)
	set(&o.User, f.user)
	set(&o.Password, f.password)
	set(&o.CA, f.ca)
	set(&o.Cert, f.cert)
	set(&o.Key, f.key)
	o.Name = name
	return o
}

func newFleetCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "fleet",
		Short: "Show and wait for the convergence of a fleet of nodes",
		Long: `fleet reads a fleet's bus (NATS JetStream): the manifest its publishers
published last, and the record every live node keeps (the revision and
manifest it serves, whether the served state was verified, its errors).`,
	}
	cmd.AddCommand(newFleetStatusCmd(), newFleetWaitCmd())
	return cmd
}

// openFleetFlags connects and opens --fleet.
func openFleetFlags(nf natsFlags, name string) (*fleet.Conn, *fleet.Fleet, error) {
	if name == "" {
		return nil, nil, errors.New("--fleet is required")
	}
	o := nf.connOptions(nil, "certops fleet")
	o.Once = true // a command that reads the bus and exits: say at once why NATS does not answer
	conn, err := fleet.Connect(o)
	if err != nil {
		return nil, nil, err
	}
	f, err := fleet.Open(conn, name, fleet.Options{})
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return conn, f, nil
}

// fleetError names fleet name in err, unless package fleet's error does
// already.
func fleetError(name string, err error) error {
	if strings.HasPrefix(err.Error(), "fleet "+name+": ") {
		return err
	}
	return fmt.Errorf("fleet %s: %w", name, err)
}

func newFleetStatusCmd() *cobra.Command {
	var nf natsFlags
	var name, format string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Print every live node of a fleet and how many serve the head manifest",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "text" && format != "json" {
				return fmt.Errorf("--format: %q is not one of text, json", format)
			}
			conn, f, err := openFleetFlags(nf, name)
			if err != nil {
				return err
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			st, err := f.Status(ctx)
			if err != nil {
				return fleetError(name, err)
			}
			if format == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(st)
			}
			printFleetStatus(cmd.OutOrStdout(), st)
			return nil
		},
	}
	addNATSFlags(cmd.Flags(), &nf, true)
	cmd.Flags().StringVar(&name, "fleet", "", "fleet name")
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "give up reaching NATS after this long")
	return cmd
}

func printFleetStatus(w io.Writer, st *fleet.Status) {
	if st.Head.Sequence == 0 {
		fmt.Fprintf(w, "fleet %s: nothing published yet\n", st.Fleet)
	} else {
		fmt.Fprintf(w, "fleet %s: head revision %s, manifest %d, %d entities, published %s\n",
			st.Fleet, st.Head.Revision, st.Head.Sequence, st.Head.Entities, st.Head.Time.Format(time.RFC3339))
	}
	fmt.Fprintf(w, "converged: %d of %d live nodes\n", st.Converged, st.Total)
	if len(st.Nodes) == 0 {
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tREVISION\tMANIFEST\tRESULT\tVERIFIED\tSEEN")
	for _, n := range st.Nodes {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%t\t%s\n", n.Node, short(n.Revision), n.Sequence, n.Result, n.Verified, n.Time.Format(time.RFC3339))
	}
	tw.Flush()
	for _, n := range st.Nodes {
		for _, e := range n.Errors {
			fmt.Fprintf(w, "%s: %s\n", n.Node, e)
		}
	}
}

func short(rev string) string {
	if len(rev) > 12 && !strings.Contains(rev, ":") {
		return rev[:12]
	}
	return rev
}

func newFleetWaitCmd() *cobra.Command {
	var nf natsFlags
	var name, revision string
	var timeout time.Duration
	var minNodes int
	cmd := &cobra.Command{
		Use:   "wait",
		Short: "Wait until the fleet's nodes serve a revision, verified",
		Long: `wait exits 0 once --min nodes (default: every live node) have applied and
verified REVISION (a commit id or a unique prefix of one) or a later manifest,
and 1 when --timeout passes first, listing the nodes that lag. It is the gate a
deployment pipeline runs after merging.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if revision == "" {
				return errors.New("--revision is required")
			}
			if minNodes < 0 {
				return fmt.Errorf("--min: %d is negative", minNodes)
			}
			conn, f, err := openFleetFlags(nf, name)
			if err != nil {
				return err
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
			res, err := f.Wait(ctx, fleet.WaitOptions{Revision: revision, Min: minNodes})
			out := cmd.OutOrStdout()
			switch {
			case err == nil:
				fmt.Fprintf(out, "revision %s is served and verified on %d of %d nodes\n", res.Revision, len(res.Done), len(res.Done)+len(res.Lagging))
				return nil
			case errors.Is(err, context.DeadlineExceeded) && res != nil:
				want := res.Want
				fmt.Fprintf(cmd.ErrOrStderr(), "timed out after %s: revision %s is served and verified on %d nodes, want %d\n", timeout, revision, len(res.Done), want)
				for _, n := range res.Lagging {
					fmt.Fprintf(cmd.ErrOrStderr(), "lagging: %s at revision %s (manifest %d), result %s, verified %t\n", n.Node, short(n.Revision), n.Sequence, n.Result, n.Verified)
				}
				return exitError{code: 1}
			default:
				return fleetError(name, err)
			}
		},
	}
	addNATSFlags(cmd.Flags(), &nf, true)
	cmd.Flags().StringVar(&name, "fleet", "", "fleet name")
	cmd.Flags().StringVar(&revision, "revision", "", "commit id, or a unique prefix of one (4 characters at least); a folder's revision by its digest, with or without dir:")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "give up after this long")
	cmd.Flags().IntVar(&minNodes, "min", 0, "nodes that must serve it (default: every live node)")
	return cmd
}

// fleetNodeFlags are the flags `run` takes for a --source nats://...
type fleetNodeFlags struct {
	nats        natsFlags
	trustedKeys []string
	dataKeyFile string
	node        string
}

func addFleetNodeFlags(fl *pflag.FlagSet, f *fleetNodeFlags) {
	addNATSFlags(fl, &f.nats, false)
	fl.StringArrayVar(&f.trustedKeys, "trusted-key", nil, "with --source nats://: Ed25519 public key (PEM) whose manifests are accepted; repeat during a key rotation")
	fl.StringVar(&f.dataKeyFile, "data-key-file", "", "with --source nats://: file of the fleet's 32-byte data key in base64 (opens sealed private keys)")
	fl.StringVar(&f.node, "node", "", "with --source nats://: this node's name in the fleet (default: the host name)")
}

// isFleetSource reports whether --source names a fleet.
func isFleetSource(s string) bool { return strings.HasPrefix(s, "nats://") }

// newFleetSource builds a node's source from --source nats://HOST:PORT/FLEET.
func newFleetSource(f runFlags, log *slog.Logger) (*reconciler.FleetSource, error) {
	urls, name, err := fleet.ParseSource(f.source)
	if err != nil {
		return nil, fmt.Errorf("--source: %w", err)
	}
	if len(f.fleet.trustedKeys) == 0 {
		return nil, errors.New("--source nats://...: --trusted-key is required")
	}
	var trusted []fleet.TrustedKey
	for _, p := range f.fleet.trustedKeys {
		k, err := fleet.LoadTrustedKey(p)
		if err != nil {
			return nil, fmt.Errorf("--trusted-key: %w", err)
		}
		trusted = append(trusted, k)
	}
	var dk *fleet.DataKey
	if f.fleet.dataKeyFile != "" {
		if dk, err = fleet.LoadDataKey(f.fleet.dataKeyFile); err != nil {
			return nil, fmt.Errorf("--data-key-file: %w", err)
		}
	}
	node := f.fleet.node
	if node == "" {
		node, _ = os.Hostname()
	}
	if !fleet.ValidName(node) {
		return nil, fmt.Errorf("--node %q: use 1 to 64 letters, digits, - or _", node)
	}
	conn, err := fleet.Connect(f.fleet.nats.connOptions(urls, "certops node "+node))
	if err != nil {
		return nil, err
	}
	fl, err := fleet.Open(conn, name, fleet.Options{Logger: log})
	if err != nil {
		conn.Close()
		return nil, err
	}
	dir := ""
	if f.dataDir != "" {
		dir = filepath.Join(f.dataDir, "fleet")
	}
	return reconciler.NewFleetSource(reconciler.FleetSourceOptions{
		Fleet: fl, NodeID: node, URL: f.source, Logger: log,
		Node: fleet.NodeOptions{Trusted: trusted, DataKey: dk, Dir: dir},
	})
}

// nodeWiring is what a run node adds around its reconciler: the
// served-state proof (every run), and the fleet source's record.
type nodeWiring struct {
	prover *reconciler.Prover
	fleet  *reconciler.FleetSource // nil unless --source nats://
}

// sinks returns the sinks to add to the reconciler's options.
func (w *nodeWiring) sinks() []reconciler.Sink {
	s := []reconciler.Sink{w.prover}
	if w.fleet != nil {
		s = append(s, w.fleet)
	}
	return s
}

// attach connects the fleet record to the reconciler's status, and the
// fleet's session-ticket keys to the gateway, so that a ticket one node
// issued resumes on the others (DESIGN.md 9).
// The fleet's refusals go to metrics.
func (w *nodeWiring) attach(rec *reconciler.Reconciler, gw *gateway.Server, metrics *admin.Metrics) {
	if w.fleet == nil {
		return
	}
	w.fleet.Attach(rec.Status, w.prover.Result)
	w.fleet.UseTicketKeys(gw.SetTicketKeys)
	fs := w.fleet
	metrics.BindFleetRefusals(func() map[string]int64 {
		out := map[string]int64{}
		for r, n := range fs.Refusals() {
			out[r.String()] = n
		}
		return out
	})
}

// statusFields are a node's additions to /api/v1/status.
func (w *nodeWiring) statusFields() map[string]any {
	p := w.prover.Result()
	out := map[string]any{"verified": p.Verified, "mismatches": p.Mismatches}
	if p.Mismatches == nil {
		out["mismatches"] = []reconciler.Mismatch{}
	}
	if w.fleet != nil {
		out["fleet"] = w.fleet.Info()
	}
	return out
}

// newNodeWiring builds the proof against the gateway's listen address;
// onProof, when not nil, is called with every finished proof.
func newNodeWiring(listen string, src any, log *slog.Logger, onProof func(reconciler.Proof)) *nodeWiring {
	w := &nodeWiring{}
	if fs, ok := src.(*reconciler.FleetSource); ok {
		w.fleet = fs
	}
	w.prover = reconciler.NewProver(loopbackAddr(listen), log, func(p reconciler.Proof) {
		if w.fleet != nil {
			w.fleet.ProofChanged()
		}
		if onProof != nil {
			onProof(p)
		}
	})
	return w
}

// loopbackAddr is where the proof dials a listen address: its port on
// 127.0.0.1 when the host is empty or unspecified.
func loopbackAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}
