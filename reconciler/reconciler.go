// Package reconciler makes the gateway serve what the repository says. It
// reads a revision from a source, loads and validates it with package
// schema, and applies it to the gateway as one atomic configuration; it also
// serves the admin API that reports its status.
//
// One reconcile runs at a time; triggers that arrive meanwhile coalesce into
// one more run. A revision with any invalid entity is not applied at all and
// the last applied state keeps serving. All methods are safe for concurrent
// use.
package reconciler

import (
	"context"
	"crypto/tls"
	"fmt"
	"io/fs"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"certops/gateway"
	"certops/schema"
)

// Applier is the gateway as the reconciler uses it.
type Applier interface {
	Apply(gateway.Config) error
}

var _ Applier = (*gateway.Server)(nil)

// Options configure a Reconciler.
type Options struct {
	// Source is the repository's file tree.
	Source fs.FS
	// Path is the folder below the root that holds the entities; "" is the
	// root.
	Path    string
	Gateway Applier
	Logger  *slog.Logger
}

// Reconciler drives the gateway from a source.
type Reconciler struct {
	opts    Options
	log     *slog.Logger
	trigger chan struct{} // capacity 1: pending triggers coalesce

	mu    sync.Mutex // serialises reconciles
	ready atomic.Bool
}

// New returns a Reconciler; it does nothing until Run or Reconcile.
func New(opts Options) *Reconciler {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Reconciler{opts: opts, log: log, trigger: make(chan struct{}, 1)}
}

// Ready reports whether a revision has been applied.
func (r *Reconciler) Ready() bool { return r.ready.Load() }

// Trigger asks for a reconcile soon. It never blocks; triggers that arrive
// while one is pending coalesce.
func (r *Reconciler) Trigger() {
	select {
	case r.trigger <- struct{}{}:
	default:
	}
}

// Run reconciles once at start and then on every trigger until ctx ends.
func (r *Reconciler) Run(ctx context.Context) error {
	r.Trigger()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.trigger:
			if err := r.Reconcile(ctx); err != nil {
				r.log.Warn("reconcile failed; the last applied state keeps serving", "err", err)
			}
		}
	}
}

// Reconcile loads the source, validates it and applies it. It returns the
// problems of an invalid revision as a schema.ErrorList.
func (r *Reconciler) Reconcile(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	start := time.Now()
	res, err := schema.Load(r.opts.Source, schema.Options{Root: r.opts.Path})
	if err != nil {
		return fmt.Errorf("load: %w", err)
	}
	if err := res.Problems.Err(); err != nil {
		return err
	}
	cfg, err := gatewayConfig(res.Entities, schema.Literal)
	if err != nil {
		return err
	}
	if err := r.opts.Gateway.Apply(cfg); err != nil {
		return err
	}
	r.ready.Store(true)
	r.log.Info("applied", "entities", len(res.Entities), "duration", time.Since(start).Round(time.Millisecond))
	return nil
}

// gatewayConfig translates validated entities into the gateway's input.
func gatewayConfig(entities []*schema.Entity, values schema.Values) (gateway.Config, error) {
	cfg := gateway.Config{Entities: make([]gateway.Entity, 0, len(entities))}
	for _, e := range entities {
		m, err := e.Material(values)
		if err != nil {
			return gateway.Config{}, err
		}
		minV, maxV := tlsVersions(e.Protocols)
		cfg.Entities = append(cfg.Entities, gateway.Entity{
			Name:        e.Name,
			Client:      e.Type == schema.TypeClient,
			SNIs:        e.SNIs,
			Chains:      m.Chains,
			ClientCAs:   m.ClientCAs,
			ClientDepth: e.ClientDepth,
			MinVersion:  minV,
			MaxVersion:  maxV,
		})
	}
	return cfg, nil
}

// tlsVersions maps ssl_protocols to the gateway's version bounds; an empty
// list means TLS 1.2 and 1.3.
func tlsVersions(protocols []string) (min, max uint16) {
	for _, p := range protocols {
		v := uint16(tls.VersionTLS12)
		if p == "TLSv1.3" {
			v = tls.VersionTLS13
		}
		if min == 0 || v < min {
			min = v
		}
		if v > max {
			max = v
		}
	}
	return min, max
}
