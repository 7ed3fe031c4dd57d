package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/sync/errgroup"

	"certops/certcheck"
	"certops/examples"
	"certops/gateway"
	"certops/reconciler"
	"certops/reconciler/admin"
	"certops/schema"
	"certops/secrets"
	"certops/source"
	"certops/trust"
)

// runFlags are the flags of `certops run`; each also reads CERTOPS_<FLAG>.
type runFlags struct {
	source          string
	ref             string
	path            string
	interval        time.Duration
	listen          string
	admin           string
	dataDir         string
	maxDelete       string
	allowMassDelete bool
	warnWithin      time.Duration

	gitTokenFile          string
	gitUsername           string
	gitCAFile             string
	sshKey                string
	sshKeyPassphraseFile  string
	knownHosts            []string
	insecureIgnoreHostKey bool

	upstream           string
	upstreamCA         string
	upstreamClientCert string

	adminTokenFile    string
	webhookSecretFile string
	webhookListen     string
	adminMaxConns     int
	fetchStallTimeout time.Duration
	tls12Suites       string
	secretRefresh     time.Duration
	secretManagers    string
	roots             []string

	trust    trustFlags
	feedback feedbackFlags

	fleet fleetNodeFlags // with --source nats://HOST:PORT/FLEET
}

func newRunCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Follow a repository and serve its certificates through the TLS gateway",
		Long: `run follows a repository of SSL entity files and serves them through the
in-process TLS gateway, applying every valid revision without a restart.

--source is a Git URL (https://, ssh://, git@host:path, git://, file://), a
local Git working copy (its committed state is served), or a plain directory
(watched for changes). Without --source it serves the example repository
embedded in the binary, its leaves issued in memory at start (90 days, from
the demo CA in examples/basic/ca.pem).

An invalid revision is not applied at all: the errors are logged and shown by
the status API, and the last applied state keeps serving until a new revision
arrives. An unreachable source or secret store is retried with backoff. The
data dir keeps the clone and the last applied revision, which is served at
start before the source is reached.

Authentication: https with a token (--git-token-file, or GIT_TOKEN) or the
user and password of the URL; ssh with --ssh-key, checking the host against
--known-hosts (default ~/.ssh/known_hosts; unknown hosts are refused).

With --verify-signatures head|tag|tag-and-head and --trusted-keys DIR (*.asc
OpenPGP and *.sshpub SSH public keys), only revisions signed by a trusted key
are applied; any other is refused like an invalid one. --notify URL (repeatable)
and --notify-config FILE send events (applied, stalled, failed, degraded,
recovered, expiring) to Slack, Teams, Alertmanager or a signed JSON webhook;
--commit-status github|gitlab sets certops/<name> on each applied or refused
commit.

Every flag can also be set with an environment variable CERTOPS_<FLAG>, dashes
as underscores (CERTOPS_SOURCE, CERTOPS_GIT_TOKEN_FILE, ...); a flag given on
the command line wins over its variable.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := bindEnv(cmd); err != nil {
				return err
			}
			return runDaemon(cmd, f)
		},
	}
	fl := cmd.Flags()
	addFollowFlags(fl, &f)
	fl.StringVar(&f.source, "source", "", "repository to follow: a Git URL, a Git working copy or a directory (default: the embedded example)")
	fl.StringVar(&f.listen, "listen", ":9443", "address of the TLS gateway")
	fl.StringVar(&f.dataDir, "data-dir", reconciler.DefaultDataDir(), "folder for the clone and the last applied revision")
	fl.BoolVar(&f.allowMassDelete, "allow-mass-delete", false, "apply plans that delete more than --max-delete or all entities")
	fl.BoolVar(&f.insecureIgnoreHostKey, "insecure-ignore-host-key", false, "accept any ssh host key (insecure; for tests only)")
	fl.StringVar(&f.upstream, "upstream", "", "URL to reverse-proxy requests to after the handshake (default: answer with a JSON description)")
	fl.StringVar(&f.upstreamCA, "upstream-ca", "", "PEM file of CAs that verify an https upstream (default: system roots)")
	fl.StringVar(&f.upstreamClientCert, "upstream-client-cert", "", "name of the type: client entity presented to the upstream (mTLS)")
	fl.StringVar(&f.tls12Suites, "tls12-cipher-suites", "", "comma-separated TLS 1.2 cipher suites of the gateway, as Go names them (default: ECDHE with AES-GCM or ChaCha20-Poly1305 only; add e.g. TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA for old clients); TLS 1.3 suites are fixed")
	addSecretManagersFlag(fl, &f.secretManagers)
	addFleetNodeFlags(fl, &f.fleet)
	return cmd
}

// parseShare reads --max-delete: "50%" or "0.5".
func parseShare(s string) (float64, error) {
	s = strings.TrimSpace(s)
	pct := strings.HasSuffix(s, "%")
	v, err := strconv.ParseFloat(strings.TrimSuffix(s, "%"), 64)
	if err != nil {
		return 0, fmt.Errorf("--max-delete: %q is not a percentage (50%%) or a fraction (0.5)", s)
	}
	if pct {
		v /= 100
	}
	if v <= 0 || v > 1 {
		return 0, fmt.Errorf("--max-delete: %q is not between 0 (exclusive) and 100%%", s)
	}
	return v, nil
}

// newSource builds the source of --source, and the Path of the entities.
func newSource(f runFlags, log *slog.Logger) (source.Source, string, error) {
	if f.source == "" {
		return nil, "basic", nil
	}
	if isFleetSource(f.source) {
		s, err := newFleetSource(f, log)
		return s, "", err
	}
	if fi, err := os.Stat(f.source); err == nil && fi.IsDir() && !isGitRepository(f.source) {
		o, err := source.NewDir(f.source, log)
		if err != nil {
			return nil, "", err
		}
		return o, f.path, nil
	}
	opts := source.GitOptions{
		URL:                   f.source,
		Ref:                   f.ref,
		Dir:                   filepath.Join(f.dataDir, "clone"),
		Username:              f.gitUsername,
		KnownHosts:            f.knownHosts,
		InsecureIgnoreHostKey: f.insecureIgnoreHostKey,
		StallTimeout:          f.fetchStallTimeout,
		Logger:                log,
	}
	if f.dataDir == "" {
		opts.Dir = ""
	}
	switch {
	case f.gitTokenFile != "":
		b, err := os.ReadFile(f.gitTokenFile)
		if err != nil {
			return nil, "", fmt.Errorf("--git-token-file: %w", err)
		}
		opts.Password = strings.TrimSpace(string(b))
	case os.Getenv("GIT_TOKEN") != "":
		opts.Password = strings.TrimSpace(os.Getenv("GIT_TOKEN"))
	}
	if f.gitCAFile != "" {
		b, err := os.ReadFile(f.gitCAFile)
		if err != nil {
			return nil, "", fmt.Errorf("--git-ca-file: %w", err)
		}
		opts.CABundle = b
	}
	if f.sshKey != "" {
		b, err := os.ReadFile(f.sshKey)
		if err != nil {
			return nil, "", fmt.Errorf("--ssh-key: %w", err)
		}
		opts.SSHKey = b
	}
	if f.sshKeyPassphraseFile != "" {
		b, err := os.ReadFile(f.sshKeyPassphraseFile)
		if err != nil {
			return nil, "", fmt.Errorf("--ssh-key-passphrase-file: %w", err)
		}
		opts.SSHKeyPassphrase = strings.TrimRight(string(b), "\r\n")
	}
	o, err := source.NewGit(opts)
	if err != nil {
		return nil, "", err
	}
	return o, f.path, nil
}

// isGitRepository reports whether dir is a Git working copy (it has .git)
// or a bare repository (HEAD and objects/ at its top).
func isGitRepository(dir string) bool {
	if _, err := os.Stat(filepath.Join(dir, ".git")); err == nil {
		return true
	}
	_, errHead := os.Stat(filepath.Join(dir, "HEAD"))
	fi, errObjects := os.Stat(filepath.Join(dir, "objects"))
	return errHead == nil && errObjects == nil && fi.IsDir()
}

// gatewayOptions builds the gateway's options from the upstream flags.
func gatewayOptions(f runFlags, log *slog.Logger) (gateway.Options, error) {
	opts := gateway.Options{Logger: log, UpstreamClientCert: f.upstreamClientCert}
	if f.upstream != "" {
		u, err := url.Parse(f.upstream)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return opts, fmt.Errorf("--upstream: %q is not an http:// or https:// URL", f.upstream)
		}
		opts.Upstream = u
	}
	if f.tls12Suites != "" {
		suites, err := gateway.ParseTLS12CipherSuites(f.tls12Suites)
		if err != nil {
			return opts, fmt.Errorf("--tls12-cipher-suites: %w", err)
		}
		opts.TLS12CipherSuites = suites
	}
	if f.upstreamCA != "" {
		b, err := os.ReadFile(f.upstreamCA)
		if err != nil {
			return opts, fmt.Errorf("--upstream-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(b) {
			return opts, fmt.Errorf("--upstream-ca: no certificate in %s", f.upstreamCA)
		}
		opts.UpstreamCAs = pool
	}
	return opts, nil
}

func runDaemon(cmd *cobra.Command, f runFlags) error {
	log, err := newLogger(cmd, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	maxDelete, err := parseShare(f.maxDelete)
	if err != nil {
		return err
	}
	if f.fetchStallTimeout <= 0 {
		return fmt.Errorf("--fetch-stall-timeout: %s is not positive", f.fetchStallTimeout)
	}
	if f.interval < 0 {
		return fmt.Errorf("--interval: %s is negative", f.interval)
	}
	src, path, err := newSource(f, log.With("component", "source"))
	if err != nil {
		return err
	}
	if _, isGit := src.(*source.Git); isGit && f.dataDir != "" {
		// The clone and the applied record are this daemon's alone.
		lock, err := reconciler.LockDataDir(f.dataDir)
		if err != nil {
			return err
		}
		defer lock.Close()
	}
	gwOpts, err := gatewayOptions(f, log.With("component", "gateway"))
	if err != nil {
		return err
	}
	if f.secretRefresh <= 0 {
		return fmt.Errorf("--secret-refresh: %s is not positive", f.secretRefresh)
	}
	var token, webhookSecret []byte
	if f.adminTokenFile != "" {
		if token, err = admin.ReadSecretFile(f.adminTokenFile); err != nil {
			return fmt.Errorf("--admin-token-file: %w", err)
		}
	}
	if err := admin.CheckAddress(f.admin, token); err != nil {
		return fmt.Errorf("--admin: %w (set --admin-token-file)", err)
	}
	if f.webhookSecretFile != "" {
		if webhookSecret, err = admin.ReadSecretFile(f.webhookSecretFile); err != nil {
			return fmt.Errorf("--webhook-secret-file: %w", err)
		}
	}

	sigs, err := f.trust.signatures()
	if err != nil {
		return err
	}
	if _, git := src.(*source.Git); sigs.Mode != trust.ModeOff && !git {
		return errors.New("--verify-signatures needs a Git --source (a folder or the embedded example has no signatures)")
	}
	fb, err := newFeedback(f.feedback, f.source, log.With("component", "feedback"))
	if err != nil {
		return err
	}

	metrics := admin.NewMetrics()
	gwOpts.OnHandshake = metrics.ObserveHandshake
	gw := gateway.New(gwOpts)
	var rec *reconciler.Reconciler
	managers, err := loadSecretManagers(f.secretManagers)
	if err != nil {
		return err
	}
	cache, err := secrets.New(secrets.Options{
		Managers:  managers,
		UserAgent: "certops/" + buildVersion(),
		Refresh:   f.secretRefresh,
		Logger:    log.With("component", "secrets"),
		OnChange:  func() { rec.Trigger() }, // a rotated secret is applied without a commit
		OnFetch:   metrics.ObserveSecretFetch,
	})
	if err != nil {
		return err
	}
	privateRoots, err := certcheck.ReadRootFiles(f.roots)
	if err != nil {
		return err
	}
	recOpts := reconciler.Options{
		Hygiene:         &schema.Hygiene{Roots: privateRoots},
		Secrets:         cache,
		Observe:         metrics.ObserveRun,
		Signatures:      sigs,
		Source:          src,
		Path:            path,
		Gateway:         gw,
		Logger:          log.With("component", "reconciler"),
		DataDir:         f.dataDir,
		Interval:        f.interval,
		MaxDelete:       maxDelete,
		AllowMassDelete: f.allowMassDelete,
		WarnWithin:      f.warnWithin,
	}
	var adminRoutes map[string]http.Handler
	if src == nil {
		// The embedded example, issued in memory at start: 90-day leaves
		// naming the demo CRL that the admin listener serves.
		demo, err := examples.NewDemo(f.admin, time.Now())
		if err != nil {
			return err
		}
		log.Info("embedded example issued in memory; restart for new leaves", "not_after", demo.NotAfter, "crl", demo.CRLURL)
		if demo.CRLURL == "" {
			log.Warn("the embedded example's leaves carry no CRL URL: --admin names no fixed port", "admin", f.admin)
		}
		recOpts.FS = demo.FS
		recOpts.DataDir = ""
		adminRoutes = demo.Routes()
	}
	if fb != nil {
		recOpts.Observe = func(rr reconciler.RunReport) {
			metrics.ObserveRun(rr)
			fb.observe(rec.Status())
		}
	}
	nodes := newNodeWiring(f.listen, src, log.With("component", "proof"), func(p reconciler.Proof) {
		metrics.ObserveProof(p)
		fb.proved(p)
	})
	recOpts.Sinks = nodes.sinks()
	rec = reconciler.New(recOpts)
	nodes.attach(rec, gw, metrics)
	adminAPI := admin.New(admin.Options{
		Reconciler:    rec,
		Metrics:       metrics,
		Token:         token,
		WebhookSecret: webhookSecret,
		Ref:           f.ref,
		StatusFields:  nodes.statusFields,
		Routes:        adminRoutes,
		Logger:        log.With("component", "admin"),
	})

	ctx := cmd.Context()
	tlsLn, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	adminLn, err := net.Listen("tcp", f.admin)
	if err != nil {
		tlsLn.Close()
		return fmt.Errorf("admin API: %w", err)
	}
	adminLog := log.With("component", "admin")
	servers := []*http.Server{admin.NewHTTPServer(adminAPI.Handler(), adminLog)}
	listeners := []net.Listener{admin.LimitListener(adminLn, f.adminMaxConns, "admin", adminLog)}
	if f.webhookListen != "" {
		hookLn, err := net.Listen("tcp", f.webhookListen)
		if err != nil {
			tlsLn.Close()
			adminLn.Close()
			return fmt.Errorf("webhook listener: %w", err)
		}
		servers = append(servers, admin.NewHTTPServer(adminAPI.WebhookHandler(), adminLog))
		listeners = append(listeners, admin.LimitListener(hookLn, f.adminMaxConns, "webhook", adminLog))
	}
	followed := "embedded"
	if src != nil {
		followed = src.String()
	}
	log.Info("certops started", "listen", tlsLn.Addr().String(), "admin", adminLn.Addr().String(),
		"source", followed, "version", buildVersion())

	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return gw.Serve(ctx, tlsLn) })
	for i, srv := range servers {
		g.Go(func() error {
			if err := srv.Serve(listeners[i]); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("admin API on %s: %w", listeners[i].Addr(), err)
			}
			return nil
		})
	}
	g.Go(func() error {
		keepGCHeadroom(ctx, func(live uint64) uint64 {
			if rec.Ready() {
				return servingHeadroom(live)
			}
			return startHeadroom
		})
		return nil
	})
	g.Go(func() error { return cache.Run(ctx) })
	g.Go(func() error { return rec.Run(ctx) })
	if fb != nil {
		g.Go(func() error { return fb.run(ctx) })
	}
	g.Go(func() error {
		// SIGHUP asks for a reconcile, as with most daemons.
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-hup:
				log.Info("SIGHUP: reconciling")
				rec.Trigger()
			}
		}
	})
	g.Go(func() error { return shutdownWhenDone(ctx, servers) })
	err = g.Wait()
	log.Info("certops stopped")
	return err
}

// shutdownWhenDone waits for ctx to end, then shuts servers down, giving
// their requests in flight 10 seconds to finish.
func shutdownWhenDone(ctx context.Context, servers []*http.Server) error {
	<-ctx.Done()
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var errs []error
	for _, srv := range servers {
		errs = append(errs, srv.Shutdown(shutdownCtx))
	}
	return errors.Join(errs...)
}

// addFollowFlags registers the flags of following a repository that run and
// publish share: the source and its credentials, triggers, the admin API,
// the checks and the feedback. Each command adds --source, --data-dir and
// --allow-mass-delete with its own wording, and its own flags.
func addFollowFlags(fl *pflag.FlagSet, f *runFlags) {
	fl.StringVar(&f.ref, "ref", "", "branch, tag or full commit id to follow (default: the remote's default branch)")
	fl.StringVar(&f.path, "path", "", "folder below the repository root that holds the entities")
	fl.DurationVar(&f.interval, "interval", time.Minute, "polling interval, ±10% jitter; 0 disables polling")
	fl.StringVar(&f.admin, "admin", "127.0.0.1:9180", "address of the admin API")
	fl.StringVar(&f.maxDelete, "max-delete", "50%", "refuse a plan deleting more than this share of the running entities (a percentage or a fraction)")
	fl.DurationVar(&f.warnWithin, "warn-within", schema.DefaultWarnWithin, "report certificates expiring within this window")
	fl.StringArrayVar(&f.roots, "roots", nil, "PEM bundle of private roots that chains may end at (repeatable); the repository's *.roots.pem add theirs")
	fl.StringVar(&f.gitTokenFile, "git-token-file", "", "file holding the https token or password (default: $GIT_TOKEN)")
	fl.StringVar(&f.gitUsername, "git-username", "", "https user name sent with the token (default: the URL's, else \"git\")")
	fl.StringVar(&f.gitCAFile, "git-ca-file", "", "PEM file of extra CAs trusted for https Git servers")
	fl.StringVar(&f.sshKey, "ssh-key", "", "private key file for ssh Git URLs")
	fl.StringVar(&f.sshKeyPassphraseFile, "ssh-key-passphrase-file", "", "file holding the passphrase of --ssh-key")
	fl.StringSliceVar(&f.knownHosts, "known-hosts", nil, "known_hosts files for ssh (default ~/.ssh/known_hosts)")
	fl.StringVar(&f.adminTokenFile, "admin-token-file", "", "file holding the bearer token of the mutating admin endpoints (required when --admin is not loopback)")
	fl.StringVar(&f.webhookSecretFile, "webhook-secret-file", "", "file holding the push-webhook secret (without it the /hooks endpoints answer 404)")
	fl.StringVar(&f.webhookListen, "webhook-listen", "", "extra address serving only the webhooks and /healthz (e.g. one the Git host can reach)")
	fl.DurationVar(&f.fetchStallTimeout, "fetch-stall-timeout", source.DefaultFetchStallTimeout, "abort a Git fetch that makes no progress for this long (its child process is killed; the attempt fails and is retried)")
	fl.IntVar(&f.adminMaxConns, "admin-max-conns", 0, "connections held at once by the admin listener and by the webhook listener, each (0: an eighth of the fd limit, 16 to 512)")
	fl.DurationVar(&f.secretRefresh, "secret-refresh", secrets.DefaultRefresh, "how often resolved secret references are fetched again")
	addTrustFlags(fl, &f.trust)
	addFeedbackFlags(fl, &f.feedback)
}
