package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"certops/certcheck"
	"certops/commitstatus"
	"certops/fleet"
	"certops/gateway"
	"certops/internal/backoff"
	"certops/reconciler"
	"certops/reconciler/admin"
	"certops/schema"
	"certops/secrets"
	"certops/source"
	"certops/trust"
)

// publishFlags are the flags of `certops publish`.
type publishFlags struct {
	run         runFlags // the source, admin and webhook flags, as for run
	nats        natsFlags
	fleet       string
	signingKey  string
	dataKeyFile string
	id          string
	replicas    int
	lease       time.Duration
}

func newPublishCmd() *cobra.Command {
	var f publishFlags
	cmd := &cobra.Command{
		Use:   "publish",
		Short: "Follow a repository and publish every valid revision to a fleet over NATS",
		Long: `publish follows a repository exactly as run does (git or a directory, --ref,
--path, --interval, webhooks and POST /api/v1/reconcile on --admin, validation,
the mass-delete guard), and publishes every valid revision to the fleet's
NATS JetStream buckets: one content-addressed blob per entity (literal private
keys sealed with --data-key-file, AES-256-GCM), manifest pages, and a head
signed with --signing-key (Ed25519 PEM) that moves by compare-and-set.

Several publishers of one fleet elect a leader; the others stand by and take
over within two lease periods. GET /api/v1/status shows "role" and
"published". The leader also rotates the fleet's session-ticket keys.

A revision with a literal private key is refused when no data key is given.
Every flag can also be set with CERTOPS_<FLAG>; NATS settings follow the nats
CLI (NATS_URL, NATS_CREDS, NATS_USER, NATS_PASSWORD, NATS_CA, NATS_CERT,
NATS_KEY), flags winning.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := bindEnv(cmd); err != nil {
				return err
			}
			return runPublisher(cmd, f)
		},
	}
	fl := cmd.Flags()
	r := &f.run
	addFollowFlags(fl, r)
	fl.StringVar(&r.source, "source", "", "repository to follow: a Git URL, a Git working copy or a directory")
	fl.StringVar(&r.dataDir, "data-dir", reconciler.DefaultDataDir(), "folder for the clone and the last published revision")
	fl.BoolVar(&r.allowMassDelete, "allow-mass-delete", false, "publish plans that delete more than --max-delete or all entities")
	addNATSFlags(fl, &f.nats, true)
	fl.StringVar(&f.fleet, "fleet", "", "fleet name (letters, digits, - and _)")
	fl.StringVar(&f.signingKey, "signing-key", "", "Ed25519 private key (PEM) that signs the manifests")
	fl.StringVar(&f.dataKeyFile, "data-key-file", "", "file of 32 random bytes in base64 that seals literal private keys and ticket keys")
	fl.StringVar(&f.id, "publisher-id", "", "this publisher's name in the election (default: host name and process id)")
	fl.IntVar(&f.replicas, "replicas", 1, "copies of each bucket in a JetStream cluster")
	fl.DurationVar(&f.lease, "lease", fleet.DefaultLease, "leader lease; a standby takes over within two")
	return cmd
}

// noGateway is the publisher's gateway: it serves nothing.
type noGateway struct{}

func (noGateway) Apply(gateway.Config) error { return nil }

func runPublisher(cmd *cobra.Command, f publishFlags) error {
	log, err := newLogger(cmd, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	if f.fleet == "" || f.signingKey == "" {
		return errors.New("--fleet and --signing-key are required")
	}
	if f.run.source == "" {
		return errors.New("--source is required")
	}
	signing, err := fleet.LoadSigningKey(f.signingKey)
	if err != nil {
		return fmt.Errorf("--signing-key: %w", err)
	}
	var dk *fleet.DataKey
	if f.dataKeyFile != "" {
		if dk, err = fleet.LoadDataKey(f.dataKeyFile); err != nil {
			return fmt.Errorf("--data-key-file: %w", err)
		}
	}
	maxDelete, err := parseShare(f.run.maxDelete)
	if err != nil {
		return err
	}
	id := f.id
	if id == "" {
		host, _ := os.Hostname()
		id = host + "-" + strconv.Itoa(os.Getpid())
	}
	if f.run.fetchStallTimeout <= 0 {
		return fmt.Errorf("--fetch-stall-timeout: %s is not positive", f.run.fetchStallTimeout)
	}
	src, path, err := newSource(f.run, log.With("component", "source"))
	if err != nil {
		return err
	}
	// A publisher applies nothing itself, but every node serves what it
	// publishes: it verifies signatures and runs the hygiene checks as run does.
	sigs, err := f.run.trust.signatures()
	if err != nil {
		return err
	}
	if _, git := src.(*source.Git); sigs.Mode != trust.ModeOff && !git {
		return errors.New("--verify-signatures needs a Git --source (a folder has no signatures)")
	}
	privateRoots, err := certcheck.ReadRootFiles(f.run.roots)
	if err != nil {
		return err
	}
	fb, err := newFeedback(f.run.feedback, f.run.source, log.With("component", "feedback"))
	if err != nil {
		return err
	}
	if fb != nil {
		// The fleet's convergence is the commit's success, not this
		// publisher's own apply (convergenceStatus).
		fb.fleet = true
	}
	var token, webhookSecret []byte
	if f.run.adminTokenFile != "" {
		if token, err = admin.ReadSecretFile(f.run.adminTokenFile); err != nil {
			return fmt.Errorf("--admin-token-file: %w", err)
		}
	}
	if err := admin.CheckAddress(f.run.admin, token); err != nil {
		return fmt.Errorf("--admin: %w (set --admin-token-file)", err)
	}
	if f.run.webhookSecretFile != "" {
		if webhookSecret, err = admin.ReadSecretFile(f.run.webhookSecretFile); err != nil {
			return fmt.Errorf("--webhook-secret-file: %w", err)
		}
	}
	conn, err := fleet.Connect(f.nats.connOptions(nil, "certops publish "+id))
	if err != nil {
		return err
	}
	defer conn.Close()
	fl, err := fleet.Open(conn, f.fleet, fleet.Options{Replicas: f.replicas, Lease: f.lease, Logger: log.With("component", "fleet")})
	if err != nil {
		return err
	}
	pub, err := fl.NewPublisher(fleet.PublisherOptions{Signing: signing, DataKey: dk})
	if err != nil {
		return err
	}
	election := fl.NewElection(id)
	sink := &publishSink{pub: pub, fleet: fl, election: election, log: log.With("component", "publish"), sealing: dk != nil}

	metrics := admin.NewMetrics()
	var rec *reconciler.Reconciler
	cache, err := secrets.New(secrets.Options{Refresh: f.run.secretRefresh, Logger: log.With("component", "secrets"),
		OnChange: func() { rec.Trigger() }, OnFetch: metrics.ObserveSecretFetch})
	if err != nil {
		return err
	}
	observe := metrics.ObserveRun
	if fb != nil {
		observe = func(rr reconciler.RunReport) {
			metrics.ObserveRun(rr)
			fb.observe(rec.Status())
		}
	}
	rec = reconciler.New(reconciler.Options{
		Secrets: cache, Observe: observe, Source: src, Path: path, Gateway: noGateway{},
		Signatures: sigs, Hygiene: &schema.Hygiene{Roots: privateRoots},
		Sinks: []reconciler.Sink{sink}, Logger: log.With("component", "reconciler"), DataDir: f.run.dataDir,
		Interval: f.run.interval, MaxDelete: maxDelete, AllowMassDelete: f.run.allowMassDelete, WarnWithin: f.run.warnWithin,
	})
	adminAPI := admin.New(admin.Options{Reconciler: rec, Metrics: metrics, Token: token, WebhookSecret: webhookSecret,
		StatusFields: sink.statusFields,
		Ref:          f.run.ref, Logger: log.With("component", "admin")})

	adminLn, err := net.Listen("tcp", f.run.admin)
	if err != nil {
		return fmt.Errorf("admin API: %w", err)
	}
	adminLog := log.With("component", "admin")
	servers := []*http.Server{admin.NewHTTPServer(adminAPI.Handler(), adminLog)}
	listeners := []net.Listener{admin.LimitListener(adminLn, f.run.adminMaxConns, "admin", adminLog)}
	if f.run.webhookListen != "" {
		hookLn, err := net.Listen("tcp", f.run.webhookListen)
		if err != nil {
			adminLn.Close()
			return fmt.Errorf("webhook listener: %w", err)
		}
		servers = append(servers, admin.NewHTTPServer(adminAPI.WebhookHandler(), adminLog))
		listeners = append(listeners, admin.LimitListener(hookLn, f.run.adminMaxConns, "webhook", adminLog))
	}
	log.Info("certops publisher started", "admin", adminLn.Addr().String(), "source", src.String(),
		"fleet", f.fleet, "publisher", id, "version", buildVersion())

	ctx := cmd.Context()
	g, ctx := errgroup.WithContext(ctx)
	for i, srv := range servers {
		g.Go(func() error {
			if err := srv.Serve(listeners[i]); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("admin API on %s: %w", listeners[i].Addr(), err)
			}
			return nil
		})
	}
	g.Go(func() error {
		// Buckets first (retried while NATS is down), then the election.
		for {
			sctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			err := fl.Setup(sctx)
			cancel()
			if err == nil || ctx.Err() != nil {
				break
			}
			log.Warn("cannot set the fleet's buckets up; retrying", "fleet", f.fleet, "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(2 * time.Second):
			}
		}
		// Not in the election's goroutine: a publish in progress holds
		// the sink (for minutes with NATS down), and the election must
		// go on renewing or taking the lease meanwhile.
		return election.Run(ctx, func(fleet.Role) { go sink.roleChanged(ctx, dk) })
	})
	g.Go(func() error { return cache.Run(ctx) })
	g.Go(func() error { return rec.Run(ctx) })
	g.Go(func() error { return shutdownWhenDone(ctx, servers) })
	if fb != nil {
		g.Go(func() error { return fb.run(ctx) })
		g.Go(func() error { convergenceStatus(ctx, fl, election, fb, commitstatus.DefaultEvery); return nil })
	}
	err = g.Wait()
	log.Info("certops publisher stopped")
	return err
}

// publishSink publishes each revision the reconciler accepts, while this
// publisher leads; a standby keeps the revision and publishes it when it
// takes over.
type publishSink struct {
	pub      publisher
	fleet    *fleet.Fleet
	election interface{ Role() fleet.Role }
	log      *slog.Logger
	sealing  bool // a data key seals literal private keys

	mu      sync.Mutex // serialises publishing; guards the fields below
	pending *reconciler.AppliedRevision
	// published is the revision of the last publish that succeeded.
	published string
	// leading ends the work of the current lead: the retries of the
	// pending revision and the ticket-key rotation.
	leading context.CancelFunc
	// refused is returned for refusedRev, a revision that cannot be
	// published, while it is current: the same error, logged once.
	refused    *reconciler.StalledError
	refusedRev string

	// errMu guards lastErr apart from mu, so that the status never waits
	// for a publish (which NATS being down holds for minutes).
	errMu   sync.Mutex
	lastErr error
}

// publisher is what the sink needs of a *fleet.Publisher.
type publisher interface {
	Publish(ctx context.Context, revision string, entities []fleet.Entity) (*fleet.Published, error)
	Last() *fleet.Published
}

func (s *publishSink) setErr(err error) {
	s.errMu.Lock()
	s.lastErr = err
	s.errMu.Unlock()
}

// Apply publishes rev, or keeps it for when this publisher leads. A
// revision with a literal private key and no data key is refused with a
// *reconciler.StalledError.
func (s *publishSink) Apply(ctx context.Context, rev *reconciler.AppliedRevision) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.refusedRev != rev.Revision {
		s.refused, s.refusedRev = nil, ""
	}
	if !s.sealing {
		// Refused whatever the role: a standby that took over could not
		// publish it either. Nothing is pending then.
		if probs := literalKeys(rev); len(probs) > 0 {
			if s.refused == nil {
				s.refused = &reconciler.StalledError{Phase: reconciler.PhaseApply, Err: probs}
				s.refusedRev = rev.Revision
			}
			s.pending = nil
			s.setErr(probs)
			return s.refused
		}
	}
	s.pending = rev
	if s.election.Role() != fleet.RoleLeader {
		s.log.Info("standing by: the leader publishes", "revision", rev.Revision)
		return nil
	}
	return s.publishLocked(ctx)
}

func (s *publishSink) publishLocked(ctx context.Context) error {
	rev := s.pending
	if rev == nil {
		return nil
	}
	ents := make([]fleet.Entity, len(rev.Entities))
	for i, e := range rev.Entities {
		ents[i] = fleetEntity(e)
	}
	p, err := s.pub.Publish(ctx, rev.Revision, ents)
	if errors.Is(err, fleet.ErrLiteralKey) {
		// The revision itself is at fault: it is stalled like an invalid
		// one (DESIGN.md 9), and the reconciler waits for a new revision
		// instead of retrying. The same error for the same revision, so
		// that the reconciler logs it once.
		s.setErr(err)
		if s.refused == nil {
			s.refused = &reconciler.StalledError{Phase: reconciler.PhaseApply, Err: fmt.Errorf("not published to the fleet: %w", err)}
			s.refusedRev = rev.Revision
		}
		s.pending = nil
		return s.refused
	}
	if err != nil {
		s.setErr(err)
		return err
	}
	s.setErr(nil)
	s.published = rev.Revision
	s.log.Info("revision published", "revision", p.Revision, "sequence", p.Sequence, "entities", p.Entities, "uploaded", p.Uploaded, "bytes", p.Bytes)
	return nil
}

// roleChanged publishes the pending revision when this publisher starts
// leading, and runs the ticket-key rotation while it leads. It acts on
// the role at the time it holds the sink, so calls that overtake each
// other end in the current role.
func (s *publishSink) roleChanged(ctx context.Context, dk *fleet.DataKey) {
	s.mu.Lock()
	if s.leading != nil {
		s.leading()
		s.leading = nil
	}
	if s.election.Role() != fleet.RoleLeader {
		s.mu.Unlock()
		return
	}
	lctx, cancel := context.WithCancel(ctx)
	s.leading = cancel
	// Published again even if this publisher published it before it lost
	// the lead: head may have moved meanwhile (a no-op when it did not).
	s.published = ""
	s.mu.Unlock()
	if dk != nil {
		go s.rotateTickets(lctx, dk)
	}
	s.publishPending(lctx)
}

// publishRetry spaces the attempts of publishPending.
var publishRetry = backoff.Policy{Min: time.Second, Max: 30 * time.Second, Jitter: 0.2}

// publishPending publishes the pending revision on taking the lead, and
// again with backoff until it is published, this publisher stops leading
// (ctx ends) or the revision is refused. The reconciler handed it to a
// standby, which took it without error, and will not hand it again: this
// is its only retry. (One NATS server of three killed made the lease and
// the first publish fail together, and the fleet stayed a commit behind.)
func (s *publishSink) publishPending(ctx context.Context) {
	for n := 1; ; n++ {
		s.mu.Lock()
		var err error
		done := s.pending == nil || s.pending.Revision == s.published
		if !done {
			err = s.publishLocked(ctx)
			done = err == nil || s.pending == nil // published, or refused
		}
		s.mu.Unlock()
		if done || ctx.Err() != nil {
			return
		}
		d := publishRetry.Delay(n)
		s.log.Warn("cannot publish on taking the lead; retrying", "in", d.Round(time.Millisecond), "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(d):
		}
	}
}

// rotateTickets rotates the fleet's session-ticket keys every 10 minutes
// until ctx ends.
func (s *publishSink) rotateTickets(ctx context.Context, dk *fleet.DataKey) {
	for {
		if rotated, err := s.fleet.RotateTicketKeys(ctx, dk, 0, time.Now()); err != nil && ctx.Err() == nil {
			s.log.Warn("cannot rotate the fleet's session-ticket keys", "err", err)
		} else if rotated {
			s.log.Info("rotated the fleet's session-ticket keys")
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(10 * time.Minute):
		}
	}
}

// literalKeys lists the literal private keys of rev, by file position
// and field: what a publisher without a data key refuses to send
// (fleet.ErrLiteralKey), since they would travel in the clear.
func literalKeys(rev *reconciler.AppliedRevision) schema.ErrorList {
	var out schema.ErrorList
	for _, e := range rev.Entities {
		for i, c := range e.Chains {
			if c.Key == "" || schema.IsReference(c.Key) {
				continue
			}
			field := "key"
			if i > 0 {
				field = fmt.Sprintf("keys[%d]", i-1)
			}
			out = append(out, &schema.Error{Severity: schema.SeverityError, Pos: e.Position(field), Field: field,
				Msg: fleet.ErrLiteralKey.Error() + "; use a secret reference or give the publisher --data-key-file"})
		}
	}
	return out
}

// statusFields are the publisher's additions to /api/v1/status.
func (s *publishSink) statusFields() map[string]any {
	out := map[string]any{"role": s.election.Role().String()}
	if p := s.pub.Last(); p != nil {
		out["published"] = map[string]any{"revision": p.Revision, "sequence": p.Sequence, "time": p.Time}
	} else {
		out["published"] = nil
	}
	s.errMu.Lock()
	if s.lastErr != nil {
		out["publish_error"] = s.lastErr.Error()
	}
	s.errMu.Unlock()
	return out
}

// fleetEntity turns a validated entity into what travels: its fields as
// written, secret references unresolved.
func fleetEntity(e *schema.Entity) fleet.Entity {
	d := fleet.Document{Name: e.Name, Type: string(e.Type), SNIs: e.SNIs, Protocols: e.Protocols, Labels: e.Labels}
	for i, c := range e.Chains {
		if i == 0 {
			d.Cert, d.Key = c.Cert, c.Key
			continue
		}
		d.Certs = append(d.Certs, c.Cert)
		d.Keys = append(d.Keys, c.Key)
	}
	if e.ClientCA != "" {
		depth := e.ClientDepth
		d.Client = &fleet.Client{CA: e.ClientCA, Depth: &depth}
	}
	return fleet.Entity{File: e.Pos.File, Doc: d, Hash: e.Hash.String() + "\x00" + e.Pos.File}
}

// convergenceStatus posts, while this publisher leads, the fleet's
// convergence on the head revision as its commit status: pending with
// "applied on N/M nodes" until every live node applied and verified it,
// then success. Only the leader posts, and the reporter posts a revision
// at most once per period, so a fleet of any size stays far below the Git
// host's 1,000 statuses per commit and its rate limit.
func convergenceStatus(ctx context.Context, fl *fleet.Fleet, election *fleet.Election, fb *feedback, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if election.Role() != fleet.RoleLeader {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, every)
		st, err := fl.Status(sctx)
		cancel()
		if err != nil {
			fb.log.Debug("cannot read the fleet's convergence", "err", err)
			continue
		}
		fb.converged(st.Head.Revision, st.Converged, st.Total)
	}
}
