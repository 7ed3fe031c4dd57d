package secrets

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"certops/schema"
)

// DefaultRefresh is the refresh interval when Options.Refresh is zero.
const DefaultRefresh = 5 * time.Minute

// refreshConcurrency bounds the fetches of one refresh round.
const refreshConcurrency = 8

// Fetch results passed to Options.OnFetch, the result label of
// certops_secret_fetch_total ("ok" as in tls_handshakes_total). A fetch is
// counted per reference, even when a round reads two fields of one secret
// with one request.
const (
	FetchSuccess = "ok"
	FetchError   = "error"
)

// Options configure a Cache. The zero value is usable.
type Options struct {
	// Refresh is how often a cached value is fetched again; 0 means
	// DefaultRefresh.
	Refresh time.Duration
	// Logger receives rotations and refresh failures; nil discards.
	Logger *slog.Logger
	// OnChange is called, at most once per refresh round, when a cached
	// value changed or a reference turned stale or fresh again. It must not
	// block; the daemon wires it to reconciler.Trigger. May be nil.
	OnChange func()
	// OnFetch is called after every fetch from a store with the provider
	// ("env", "vault", "aws") and FetchSuccess or FetchError, for the
	// secret_fetch_total metric. May be nil.
	OnFetch func(provider, result string)
	// Getenv reads the environment: $env:// references and the VAULT_*
	// configuration. nil means os.LookupEnv.
	Getenv func(string) (string, bool)
	// HTTPClient is the base client for Vault. nil means a client built
	// from VAULT_CACERT, VAULT_CAPATH, VAULT_CLIENT_CERT, VAULT_CLIENT_KEY,
	// VAULT_TLS_SERVER_NAME, VAULT_SKIP_VERIFY and VAULT_CLIENT_TIMEOUT as
	// the Vault CLI reads them.
	HTTPClient *http.Client
	// AWSConfig configures AWS Secrets Manager. nil means
	// config.LoadDefaultConfig (the SDK's standard environment, shared
	// files, credential chain and endpoint settings) on first use.
	AWSConfig *aws.Config
}

// provider fetches the value of a reference path of one provider.
type provider interface {
	fetch(ctx context.Context, path string) ([]byte, error)
}

// Cache resolves secret references and keeps their values fresh. It is safe
// for concurrent use. Create it with New.
type Cache struct {
	opts    Options
	log     *slog.Logger
	env     envProvider
	vault   lazy[*vaultClient]
	aws     lazy[*awsClient]
	flights flights
	kick    chan struct{} // capacity 1: wakes Run when the first entry is added
	running atomic.Bool

	roundMu sync.Mutex // serialises refresh rounds, so an older round never publishes over a newer one

	mu        sync.Mutex // guards entries and nextRound
	entries   map[string]*entry
	nextRound time.Time // when all fresh entries are fetched again
}

// entry is the cached state of one reference.
type entry struct {
	provider string
	value    secret
	err      error     // the last refresh's failure; nil once one succeeds
	failures int       // consecutive failed refreshes
	retryAt  time.Time // when a stale entry is fetched again
}

// Format redacts the entry: fmt cannot call secret's methods through an
// unexported field, so the entry must hide it itself.
func (e entry) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "{provider:%s value:%s failures:%d}", e.provider, redacted, e.failures)
}

// LogValue implements slog.LogValuer.
func (e entry) LogValue() slog.Value {
	return slog.GroupValue(slog.String("provider", e.provider), slog.String("value", redacted), slog.Int("failures", e.failures))
}

// New returns a Cache. Providers are configured lazily, on the first
// reference that uses them, so a deployment without Vault needs no VAULT_*
// settings.
func New(opts Options) (*Cache, error) {
	if opts.Refresh < 0 {
		return nil, fmt.Errorf("secret refresh interval %v: must not be negative", opts.Refresh)
	}
	if opts.Refresh == 0 {
		opts.Refresh = DefaultRefresh
	}
	if opts.Getenv == nil {
		opts.Getenv = os.LookupEnv
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Cache{
		opts:    opts,
		log:     log,
		env:     envProvider{getenv: opts.Getenv},
		kick:    make(chan struct{}, 1),
		entries: make(map[string]*entry),
	}
	c.vault.init = func(context.Context) (*vaultClient, error) {
		return newVaultClient(opts.Getenv, opts.HTTPClient, log)
	}
	c.aws.init = func(ctx context.Context) (*awsClient, error) { return newAWSClient(ctx, opts.AWSConfig) }
	return c, nil
}

// Resolve returns the value of ref: the cached one if ref was resolved
// before (even when its last refresh failed; see Stale), else a fresh fetch,
// which is then cached and refreshed by Run. Concurrent first resolutions
// of one reference share one fetch. The caller owns the returned slice.
// Errors are *ReferenceError (they name ref, never a value) except for a
// value that is not a reference at all, which yields schema.ErrNotReference
// without quoting it.
func (c *Cache) Resolve(ctx context.Context, ref string) ([]byte, error) {
	r, err := schema.ParseReference(ref)
	if errors.Is(err, schema.ErrNotReference) {
		// ref may be PEM text, even a private key: never quote it.
		return nil, fmt.Errorf("resolve: %w", schema.ErrNotReference)
	}
	if err != nil {
		return nil, &ReferenceError{Ref: ref, Err: err}
	}
	c.mu.Lock()
	if e, ok := c.entries[ref]; ok {
		v := e.value.bytes()
		c.mu.Unlock()
		return v, nil
	}
	c.mu.Unlock()

	v, err := c.fetch(ctx, ref, r)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	e, ok := c.entries[ref]
	first := len(c.entries) == 0
	if !ok {
		// A new reference joins the next scheduled round.
		e = &entry{provider: r.Provider, value: v}
		c.entries[ref] = e
		if first {
			c.nextRound = time.Now().Add(c.opts.Refresh)
		}
	}
	out := e.value.bytes()
	c.mu.Unlock()
	if first {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
	return out, nil
}

// Stale returns the error of ref's last refresh if it failed, in which case
// Resolve serves the previous value and the entity using it is degraded. It
// returns nil for a fresh or unknown reference.
func (c *Cache) Stale(ref string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.entries[ref]; ok {
		return e.err
	}
	return nil
}

// Refresh fetches every cached reference now, whatever its schedule, and
// returns the failures joined (each a *ReferenceError). Like a scheduled
// round it updates values and staleness and calls OnChange when something
// changed; the next scheduled round is Options.Refresh from now.
func (c *Cache) Refresh(ctx context.Context) error {
	return c.refresh(ctx, time.Now(), true)
}

// Run refreshes the cached references until ctx ends, then returns nil.
// Every Options.Refresh a round fetches all of them together, so that the
// fields of one secret (a certificate and its key) change in the same
// round. A reference whose refresh failed is retried on its own schedule,
// after min(5s·2ⁿ⁻¹, Refresh) for n consecutive failures, until it
// succeeds. Run may be called once.
func (c *Cache) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("secrets: Run called twice")
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		var wait <-chan time.Time
		if next, ok := c.nextDue(); ok {
			timer.Reset(max(time.Until(next), 0))
			wait = timer.C
		}
		select {
		case <-ctx.Done():
			return nil
		case <-c.kick:
			// The first entry was added: recompute the next due time.
			timer.Stop()
		case <-wait:
			_ = c.refresh(ctx, time.Now(), false) // failures are logged per reference and reported by Stale
		}
	}
}

// Retain forgets every cached reference that is not in refs, so that a
// reference no entity uses any more is no longer fetched at every refresh.
// The reconciler calls it with the references of each revision it applies.
// A forgotten reference is fetched again if it is resolved again.
func (c *Cache) Retain(refs []string) {
	keep := make(map[string]bool, len(refs))
	for _, r := range refs {
		keep[r] = true
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for ref := range c.entries {
		if !keep[ref] {
			delete(c.entries, ref)
		}
	}
}

// nextDue returns when the next round or retry is due.
func (c *Cache) nextDue() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) == 0 {
		return time.Time{}, false
	}
	next := c.nextRound
	for _, e := range c.entries {
		if e.err != nil && e.retryAt.Before(next) {
			next = e.retryAt
		}
	}
	return next, true
}

// refresh runs a round at now: every fresh reference if the scheduled
// round is due (or all is set), and every stale reference whose retry is
// due (all of them if all is set). The round's outcomes are published
// together, under one lock, so that Resolve never sees half a round.
func (c *Cache) refresh(ctx context.Context, now time.Time, all bool) error {
	c.roundMu.Lock()
	defer c.roundMu.Unlock()
	c.mu.Lock()
	full := all || !now.Before(c.nextRound)
	if full {
		c.nextRound = now.Add(c.opts.Refresh)
	}
	var due []string
	for ref, e := range c.entries {
		if (e.err == nil && full) || (e.err != nil && (all || !e.retryAt.After(now))) {
			due = append(due, ref)
		}
	}
	c.mu.Unlock()
	if len(due) == 0 {
		return nil
	}
	sort.Strings(due)

	// One read per secret per round: the fields of one secret come from
	// the same version of it.
	ctx = withRoundMemo(ctx)
	results := make([]fetchResult, len(due))
	var wg sync.WaitGroup
	sem := make(chan struct{}, refreshConcurrency)
	for i, ref := range due {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			r, err := schema.ParseReference(ref) // cannot fail: ref was parsed when cached
			if err != nil {
				results[i] = fetchResult{ref: ref, err: &ReferenceError{Ref: ref, Err: err}}
				return
			}
			v, err := c.fetch(ctx, ref, r)
			results[i] = fetchResult{ref: ref, val: v, err: err}
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err() // shutting down: not the stores' failure
	}

	var errs []error
	changed := false
	c.mu.Lock()
	for _, res := range results {
		if c.record(res, now) {
			changed = true
		}
		if res.err != nil {
			errs = append(errs, res.err)
		}
	}
	c.mu.Unlock()
	if changed && c.opts.OnChange != nil {
		c.opts.OnChange()
	}
	return errors.Join(errs...)
}

// fetchResult is the outcome of fetching one reference in a round.
type fetchResult struct {
	ref string
	val secret
	err error
}

// record stores the outcome of refreshing a reference and reports whether
// its value or staleness changed. Callers hold c.mu.
func (c *Cache) record(res fetchResult, now time.Time) bool {
	e, ok := c.entries[res.ref]
	if !ok {
		return false
	}
	if res.err != nil {
		e.failures++
		retry := backoff(e.failures, c.opts.Refresh)
		e.retryAt = now.Add(retry)
		// A new reason is a change too: the status shows the latest one.
		changed := e.err == nil || e.err.Error() != res.err.Error()
		e.err = res.err
		c.log.Warn("secret refresh failed; serving the previous value", "ref", res.ref, "err", res.err, "failures", e.failures, "retry_in", retry)
		return changed
	}
	changed := e.err != nil
	if e.err != nil {
		c.log.Info("secret refresh recovered", "ref", res.ref, "failures", e.failures)
	}
	e.err, e.failures, e.retryAt = nil, 0, time.Time{}
	if !bytes.Equal(e.value, res.val) {
		e.value = res.val
		changed = true
		c.log.Info("secret value changed", "ref", res.ref)
	}
	return changed
}

// backoff is the wait before retrying after n consecutive failures:
// 5s doubling, capped at refresh.
func backoff(n int, refresh time.Duration) time.Duration {
	d := 5 * time.Second
	for i := 1; i < n && d < refresh; i++ {
		d *= 2
	}
	return min(d, refresh)
}

// fetch reads ref from its store, sharing the request with concurrent
// fetches of the same reference.
func (c *Cache) fetch(ctx context.Context, ref string, r schema.Reference) (secret, error) {
	return c.flights.do(ctx, ref, func(ctx context.Context) (secret, error) {
		p, err := c.provider(ctx, r.Provider)
		if err == nil {
			var b []byte
			b, err = p.fetch(ctx, r.Path)
			if err == nil {
				c.fetched(r.Provider, FetchSuccess)
				c.log.Debug("secret fetched", "ref", ref)
				return secret(b), nil
			}
		}
		c.fetched(r.Provider, FetchError)
		return nil, &ReferenceError{Ref: ref, Err: err}
	})
}

func (c *Cache) fetched(provider, result string) {
	if c.opts.OnFetch != nil {
		c.opts.OnFetch(provider, result)
	}
}

// provider returns the provider of a reference, configuring it on first use.
func (c *Cache) provider(ctx context.Context, name string) (provider, error) {
	switch name {
	case "env":
		return c.env, nil
	case "vault":
		return c.vault.get(ctx)
	case "aws":
		return c.aws.get(ctx)
	}
	return nil, fmt.Errorf("unknown provider %q", name)
}

// lazy builds a value on first successful use. A failed init is retried on
// the next use, so a configuration fixed in the environment is picked up.
type lazy[T any] struct {
	init func(context.Context) (T, error)
	mu   sync.Mutex // guards v and ok
	v    T
	ok   bool
}

func (l *lazy[T]) get(ctx context.Context) (T, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ok {
		return l.v, nil
	}
	v, err := l.init(ctx)
	if err != nil {
		var zero T
		return zero, err
	}
	l.v, l.ok = v, true
	return v, nil
}
