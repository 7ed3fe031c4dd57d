// Package daemontest runs a whole certops daemon in process for tests, as
// `certops run` wires it: a gateway serving TLS on a loopback listener, a
// reconciler applying to it, and the admin API with its metrics behind an
// httptest server. Tests of the packages that need every piece at once
// (admin, secrets, the commands) use it instead of wiring the daemon
// again. Everything stops when the test ends.
package daemontest

import (
	"context"
	"io/fs"
	"log/slog"
	"net"
	"net/http/httptest"
	"sync"
	"testing"

	"certops/gateway"
	"certops/reconciler"
	"certops/reconciler/admin"
	"certops/source"
)

// Options configure a test daemon; zero values are those of `certops run`
// where it has one.
type Options struct {
	// Source, FS and Path are the reconciler's (FS is used when Source is
	// nil).
	Source source.Source
	FS     fs.FS
	Path   string
	// Secrets resolves secret references; nil has none.
	Secrets reconciler.Resolver
	// Logger receives every component's log; nil discards it.
	Logger *slog.Logger
	// Token, WebhookSecret and Ref are the admin API's.
	Token, WebhookSecret []byte
	Ref                  string
	// Run runs the reconciler's loop (triggers, polls, retries) until the
	// test ends; without it the test drives the reconciler with
	// ReconcileNow.
	Run bool
	// Also are run beside the daemon until the test ends (a secret
	// cache's Run).
	Also []func(ctx context.Context)
}

// Daemon is a running test daemon.
type Daemon struct {
	Gateway    *gateway.Server
	Addr       string // the gateway's TLS listener, 127.0.0.1:port
	Reconciler *reconciler.Reconciler
	Metrics    *admin.Metrics
	Admin      *admin.Server
	API        *httptest.Server // the admin API (Admin.Handler)
}

// Start starts a daemon and stops it when tb ends; a gateway that does not
// stop cleanly fails tb.
func Start(tb testing.TB, opts Options) *Daemon {
	tb.Helper()
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	d := &Daemon{Metrics: admin.NewMetrics()}
	d.Gateway = gateway.New(gateway.Options{Logger: log.With("component", "gateway"), OnHandshake: d.Metrics.ObserveHandshake})
	d.Reconciler = reconciler.New(reconciler.Options{
		Source: opts.Source, FS: opts.FS, Path: opts.Path,
		Gateway: d.Gateway, Secrets: opts.Secrets, Observe: d.Metrics.ObserveRun,
		Logger: log.With("component", "reconciler"),
	})
	d.Admin = admin.New(admin.Options{Reconciler: d.Reconciler, Metrics: d.Metrics, Token: opts.Token,
		WebhookSecret: opts.WebhookSecret, Ref: opts.Ref, Logger: log.With("component", "admin")})
	d.API = httptest.NewServer(d.Admin.Handler())
	tb.Cleanup(d.API.Close)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	d.Addr = ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	serveErr := make(chan error, 1)
	wg.Go(func() { serveErr <- d.Gateway.Serve(ctx, ln) })
	if opts.Run {
		wg.Go(func() { d.Reconciler.Run(ctx) })
	}
	for _, f := range opts.Also {
		wg.Go(func() { f(ctx) })
	}
	tb.Cleanup(func() {
		cancel()
		wg.Wait()
		if err := <-serveErr; err != nil {
			tb.Errorf("gateway Serve: %v", err)
		}
	})
	return d
}
