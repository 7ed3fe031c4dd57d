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
	"golang.org/x/sync/singleflight"

	"certops/internal/backoff"
	"certops/secrets/ref"
)

// DefaultRefresh is the refresh interval when Options.Refresh is zero.
const DefaultRefresh = 5 * time.Minute

// refreshConcurrency bounds the fetches of one refresh round.
const refreshConcurrency = 8

// storeDownAfter is how many fetches in a row of one store must fail with
// ErrUnavailable before a round stops trying that store: its remaining
// references are reported stale at once instead of each waiting for its
// own timeout (issue 17.1).
const storeDownAfter = 3

// fetchTimeout bounds one fetch of one reference: provider login, KV
// detection, the read and its retries. A fetch is shared by every caller
// waiting for it, so it does not run on any one caller's context.
const fetchTimeout = 30 * time.Second

// retryBackoff is the wait before a stale reference is fetched again: 5s
// doubling, capped at the refresh interval.
func retryBackoff(n int, refresh time.Duration) time.Duration {
	return backoff.Policy{Min: 5 * time.Second, Max: refresh}.Delay(n)
}

// Fetch results passed to Options.OnFetch, the result label of
// certops_secret_fetch_total ("ok" as in tls_handshakes_total). A fetch is
// counted per reference, even when a round reads two fields of one secret
// with one request; a reference not tried because its store is down counts
// as an error.
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
	// OnChange is called when cached values changed or references turned
	// stale or fresh again: during a refresh round, as soon as the fetches
	// of one secret have ended, so that an outage shows within seconds. It
	// must not block; the daemon wires it to reconciler.Trigger, which
	// coalesces calls. May be nil.
	OnChange func()
	// OnFetch is called after every fetch from a store with the provider
	// ("env", "vault", "aws") and FetchSuccess or FetchError, for the
	// secret_fetch_total metric. May be nil.
	OnFetch func(provider, result string)
	// Getenv reads the environment: $env:// references, the VAULT_*
	// configuration and $env:// values of secret managers. nil means
	// os.LookupEnv.
	Getenv func(string) (string, bool)
	// HTTPClient is the base client for Vault. nil means a client built
	// from VAULT_CACERT, VAULT_CAPATH, VAULT_CLIENT_CERT, VAULT_CLIENT_KEY,
	// VAULT_TLS_SERVER_NAME, VAULT_SKIP_VERIFY and VAULT_CLIENT_TIMEOUT as
	// the Vault CLI reads them, except that one attempt times out after 4s
	// by default (the CLI waits 60s). A client without a Timeout gets
	// that one.
	HTTPClient *http.Client
	// AWSConfig configures AWS Secrets Manager. nil means
	// config.LoadDefaultConfig (the SDK's standard environment, shared
	// files, credential chain and endpoint settings) on first use.
	AWSConfig *aws.Config
	// UserAgent is sent to the stores, so that their audit logs tell
	// certops from other clients; "" means "certops".
	UserAgent string
	// Managers are the named secret managers of --secret-managers (see
	// LoadManagers); nil means none.
	Managers *Managers
}

// Cache resolves secret references and keeps their values fresh. It is safe
// for concurrent use. Create it with New.
type Cache struct {
	opts      Options
	log       *slog.Logger
	providers providerSet
	flights   singleflight.Group    // first resolutions, by reference
	reads     atomic.Pointer[reads] // the latest round's reads
	kick      chan struct{}         // capacity 1: wakes Run when the first entry is added
	running   atomic.Bool

	roundMu sync.Mutex // serialises refresh rounds, so an older round never publishes over a newer one

	mu        sync.Mutex // guards entries and nextRound
	entries   map[string]*entry
	nextRound time.Time // when all fresh entries are fetched again
}

// entry is the cached state of one reference.
type entry struct {
	ref      ref.Reference
	value    secret
	err      error     // the last refresh's failure; nil once one succeeds
	failures int       // consecutive failed refreshes
	retryAt  time.Time // when a stale entry is fetched again
}

// Format redacts the entry: fmt cannot call secret's methods through an
// unexported field, so the entry must hide it itself.
func (e entry) Format(f fmt.State, _ rune) {
	fmt.Fprintf(f, "{provider:%s value:%s failures:%d}", e.ref.Provider, redacted, e.failures)
}

// LogValue implements slog.LogValuer.
func (e entry) LogValue() slog.Value {
	return slog.GroupValue(slog.String("provider", e.ref.Provider), slog.String("value", redacted), slog.Int("failures", e.failures))
}

// Format prints a summary of the cache, never its values: fmt's reflection
// would otherwise walk into entries and in-flight fetches.
func (c *Cache) Format(f fmt.State, _ rune) {
	c.mu.Lock()
	n := len(c.entries)
	c.mu.Unlock()
	fmt.Fprintf(f, "secrets.Cache{references:%d refresh:%v}", n, c.opts.Refresh)
}

// LogValue implements slog.LogValuer likewise.
func (c *Cache) LogValue() slog.Value {
	c.mu.Lock()
	n := len(c.entries)
	c.mu.Unlock()
	return slog.GroupValue(slog.Int("references", n), slog.Duration("refresh", c.opts.Refresh))
}

// New returns a Cache. Providers are opened lazily, on the first reference
// that uses them, so a deployment without Vault needs no VAULT_* settings.
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
	if opts.UserAgent == "" {
		opts.UserAgent = "certops"
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Cache{
		opts:    opts,
		log:     log,
		kick:    make(chan struct{}, 1),
		entries: make(map[string]*entry),
	}
	c.providers = providerSet{opened: make(map[string]*lazy[Provider]), cfg: func(name string) ProviderConfig {
		return ProviderConfig{
			Getenv:     opts.Getenv,
			HTTPClient: opts.HTTPClient,
			AWSConfig:  opts.AWSConfig,
			Logger:     log,
			UserAgent:  opts.UserAgent,
			Managers:   opts.Managers.of(name),
		}
	}}
	c.reads.Store(newReads(false))
	return c, nil
}

// Resolve returns the value of ref: the cached one if ref was resolved
// before (even when its last refresh failed; see Stale), else a fresh fetch,
// which is then cached and refreshed by Run. Concurrent first resolutions
// of one reference share one fetch, and first resolutions of fields of one
// secret share one read of it. The caller owns the returned slice. Errors
// are *ReferenceError (they name ref, never a value) except for a value
// that is not a reference at all, which yields ref.ErrNotReference without
// quoting it.
func (c *Cache) Resolve(ctx context.Context, s string) ([]byte, error) {
	r, err := ref.Parse(s)
	if errors.Is(err, ref.ErrNotReference) {
		// s may be PEM text, even a private key: never quote it.
		return nil, fmt.Errorf("resolve: %w", ref.ErrNotReference)
	}
	if err != nil {
		return nil, &ReferenceError{Ref: s, Err: err}
	}
	c.mu.Lock()
	if e, ok := c.entries[s]; ok {
		v := e.value.bytes()
		c.mu.Unlock()
		return v, nil
	}
	c.mu.Unlock()

	v, err := c.fetchShared(ctx, r)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	e, ok := c.entries[s]
	first := len(c.entries) == 0
	if !ok {
		// A new reference joins the next scheduled round.
		e = &entry{ref: r, value: v}
		c.entries[s] = e
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

// Stale returns why ref's last refresh failed, in which case Resolve
// serves the previous value and the entity using it is degraded. The error
// is the latest failure's cause; it does not repeat ref, which the caller
// knows. It returns nil for a fresh or unknown reference.
func (c *Cache) Stale(s string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[s]
	if !ok || e.err == nil {
		return nil
	}
	if re, ok := e.err.(*ReferenceError); ok {
		return re.Err
	}
	return e.err
}

// Refresh fetches every cached reference now, whatever its schedule, and
// returns the failures joined (each a *ReferenceError). Like a scheduled
// round it updates values and staleness and calls OnChange when something
// changed; the next scheduled round is Options.Refresh from now.
func (c *Cache) Refresh(ctx context.Context) error {
	return c.refresh(ctx, time.Now(), true)
}

// Run refreshes the cached references until ctx ends, then returns nil.
// Every Options.Refresh a round fetches all of them, the fields of one
// secret together, so that a certificate and its key change in the same
// round. A reference whose refresh failed is retried on its own schedule,
// after min(5s·2ⁿ⁻¹, Refresh) for n consecutive failures, until it
// succeeds. Run also runs the providers' background work (Vault token
// renewal, on the token's own schedule). Run may be called once.
func (c *Cache) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("secrets: Run called twice")
	}
	var bg sync.WaitGroup
	bg.Go(func() { c.providers.bg.Run(ctx) })
	defer bg.Wait()
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
			_ = c.refresh(ctx, time.Now(), false) // failures are logged and reported by Stale
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
	for s := range c.entries {
		if !keep[s] {
			delete(c.entries, s)
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

// group is the references of one secret due in a round.
type group struct {
	loc  Location
	refs []ref.Reference
}

// storeState is a round's view of one store's health.
type storeState struct {
	failures int   // fetches in a row that failed with ErrUnavailable
	lastErr  error // the last of them
	down     bool
	skipped  int
}

// refresh runs a round at now: every fresh reference if the scheduled
// round is due (or all is set), and every stale reference whose retry is
// due (all of them if all is set). The references of one secret are
// fetched one after the other from one read, and their outcomes published
// together as soon as they end, so that Resolve never sees half a secret
// and a failure shows without waiting for the rest of the round. Once a
// store has failed storeDownAfter times in a row, its remaining references
// are reported stale without being tried.
func (c *Cache) refresh(ctx context.Context, now time.Time, all bool) error {
	c.roundMu.Lock()
	defer c.roundMu.Unlock()
	c.mu.Lock()
	full := all || !now.Before(c.nextRound)
	if full {
		c.nextRound = now.Add(c.opts.Refresh)
	}
	var due []ref.Reference
	for _, e := range c.entries {
		if (e.err == nil && full) || (e.err != nil && (all || !e.retryAt.After(now))) {
			due = append(due, e.ref)
		}
	}
	c.mu.Unlock()
	if len(due) == 0 {
		return nil
	}
	groups := c.groups(ctx, due)

	rd := newReads(true)
	c.reads.Store(rd)
	defer rd.endRound()

	var (
		storesMu sync.Mutex // guards stores and errs
		stores   = make(map[string]*storeState)
		errs     []error
	)
	// down reports whether the round gave up on store, counting a skip.
	down := func(store string) (bool, error) {
		storesMu.Lock()
		defer storesMu.Unlock()
		st := stores[store]
		if st == nil || !st.down {
			return false, nil
		}
		st.skipped++
		return true, fmt.Errorf("%s is unreachable (%d failures in a row in this round; not tried): %w", store, st.failures, st.lastErr)
	}
	observe := func(store string, err error) {
		storesMu.Lock()
		defer storesMu.Unlock()
		st := stores[store]
		if st == nil {
			st = &storeState{}
			stores[store] = st
		}
		if err == nil || !errors.Is(err, ErrUnavailable) {
			st.failures, st.down = 0, false
			return
		}
		st.failures++
		if re, ok := err.(*ReferenceError); ok {
			err = re.Err
		}
		st.lastErr = err
		if st.failures >= storeDownAfter && !st.down {
			st.down = true
			c.log.Warn("secret store unreachable; its references keep their previous values and are retried with backoff",
				"store", store, "failures", st.failures, "err", err)
		}
	}

	var wg sync.WaitGroup
	sem := make(chan struct{}, refreshConcurrency)
	for _, g := range groups {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			results := make([]fetchResult, len(g.refs))
			for i, r := range g.refs {
				if skip, err := down(g.loc.Store); skip {
					c.fetched(r.Provider, FetchError)
					results[i] = fetchResult{ref: r.String(), err: &ReferenceError{Ref: r.String(), Err: err}, skipped: true}
					continue
				}
				v, err := c.fetch(ctx, r, rd)
				observe(g.loc.Store, err)
				results[i] = fetchResult{ref: r.String(), val: v, err: err}
			}
			if ctx.Err() != nil {
				return // shutting down: not the stores' failure
			}
			c.publish(results, now)
			storesMu.Lock()
			for _, res := range results {
				if res.err != nil {
					errs = append(errs, res.err)
				}
			}
			storesMu.Unlock()
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	for store, st := range stores {
		if st.skipped > 0 {
			c.log.Warn("secret references not tried: their store is unreachable", "store", store, "references", st.skipped)
		}
	}
	return errors.Join(errs...)
}

// groups sorts references by store and secret.
func (c *Cache) groups(ctx context.Context, refs []ref.Reference) []*group {
	byKey := make(map[string]*group)
	var out []*group
	for _, r := range refs {
		loc := Location{Store: r.Provider, Secret: r.Path}
		if p, err := c.providers.get(ctx, r.Provider); err == nil {
			if l, ok := p.(Locator); ok {
				loc = l.Locate(r.Path)
			}
		}
		k := loc.Store + "\x00" + loc.Secret
		g := byKey[k]
		if g == nil {
			g = &group{loc: loc}
			byKey[k] = g
			out = append(out, g)
		}
		g.refs = append(g.refs, r)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].loc.Store != out[j].loc.Store {
			return out[i].loc.Store < out[j].loc.Store
		}
		return out[i].loc.Secret < out[j].loc.Secret
	})
	for _, g := range out {
		sort.Slice(g.refs, func(i, j int) bool { return g.refs[i].String() < g.refs[j].String() })
	}
	return out
}

// fetchResult is the outcome of fetching one reference in a round.
type fetchResult struct {
	ref     string
	val     secret
	err     error
	skipped bool // not tried: its store was down
}

// publish records the outcomes of one secret's references under one lock
// and calls OnChange if anything changed.
func (c *Cache) publish(results []fetchResult, now time.Time) {
	changed := false
	c.mu.Lock()
	for _, res := range results {
		if c.record(res, now) {
			changed = true
		}
	}
	c.mu.Unlock()
	if changed && c.opts.OnChange != nil {
		c.opts.OnChange()
	}
}

// record stores the outcome of refreshing a reference and reports whether
// its value or its staleness (the reason included) changed. Callers hold
// c.mu.
func (c *Cache) record(res fetchResult, now time.Time) bool {
	e, ok := c.entries[res.ref]
	if !ok {
		return false
	}
	if res.err != nil {
		e.failures++
		retry := retryBackoff(e.failures, c.opts.Refresh)
		e.retryAt = now.Add(retry)
		prev := e.err
		e.err = res.err
		// The reason follows the latest failure (issue 17.7).
		changed := prev == nil || prev.Error() != res.err.Error()
		switch {
		case res.skipped:
			c.log.Debug("secret refresh skipped; serving the previous value", "ref", res.ref, "err", res.err)
		case changed:
			c.log.Warn("secret refresh failed; serving the previous value", "ref", res.ref, "err", res.err, "failures", e.failures, "retry_in", retry)
		default:
			c.log.Debug("secret refresh failed again", "ref", res.ref, "failures", e.failures, "retry_in", retry)
		}
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

// fetchShared fetches r for a first resolution, sharing the fetch with
// concurrent first resolutions of r. The fetch outlives a caller that gives
// up: it keeps ctx's values (trace ids) but not its cancellation.
func (c *Cache) fetchShared(ctx context.Context, r ref.Reference) (secret, error) {
	ch := c.flights.DoChan(r.String(), func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), fetchTimeout)
		defer cancel()
		return c.fetch(fctx, r, c.reads.Load())
	})
	select {
	case res := <-ch:
		v, _ := res.Val.(secret)
		return v, res.Err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// fetch reads r from its store, sharing the reads of secrets through rd.
func (c *Cache) fetch(ctx context.Context, r ref.Reference, rd *reads) (secret, error) {
	p, err := c.providers.get(ctx, r.Provider)
	if err == nil {
		var b []byte
		b, err = p.Fetch(withReads(ctx, rd), r.Path)
		if err == nil {
			c.fetched(r.Provider, FetchSuccess)
			c.log.Debug("secret fetched", "ref", r.String())
			return secret(b), nil
		}
	}
	c.fetched(r.Provider, FetchError)
	return nil, &ReferenceError{Ref: r.String(), Err: err}
}

func (c *Cache) fetched(provider, result string) {
	if c.opts.OnFetch != nil {
		c.opts.OnFetch(provider, result)
	}
}
