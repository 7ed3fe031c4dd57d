package reconciler

import (
	"context"
	"io/fs"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
	"weak"

	"golang.org/x/sync/singleflight"

	"certops/gateway"
	"certops/internal/backoff"
	"certops/plan"
	"certops/schema"
	"certops/source"
)

// Applier is the gateway as the reconciler uses it: the first sink, which
// takes the resolved material and applies it atomically.
type Applier interface {
	Apply(gateway.Config) error
}

var _ Applier = (*gateway.Server)(nil)

// Options configure a Reconciler.
type Options struct {
	// Source is where revisions come from. When nil, FS is used.
	Source source.Source
	// FS is a fixed file tree (such as the embedded example), used when
	// Source is nil.
	FS fs.FS
	// Path is the folder below the root that holds the entities; "" is the
	// root.
	Path string
	// Gateway serves the applied state. It is the first sink: applied
	// atomically, and a refusal refuses the revision.
	Gateway Applier
	// Sinks receive each applied revision after the gateway serves it,
	// in order (a fleet publisher). See [Sink].
	Sinks  []Sink
	Logger *slog.Logger
	// Secrets resolves secret references; nil makes every reference a
	// retryable error "no secret resolver configured".
	Secrets Resolver
	// Observe, when non-nil, is called after every reconcile (metrics),
	// by the reconciling goroutine: it must not block.
	Observe func(RunReport)
	// DataDir keeps the record of the last applied revision, restored at
	// start from the source's local clone ([source.Opener]); "" keeps
	// nothing.
	DataDir string
	// Interval is the polling period (±10% jitter); 0 polls never.
	Interval time.Duration
	// MaxDelete is the largest fraction (0 to 1) of the running entities a
	// plan may delete; 0 means 0.5. A plan deleting every running entity
	// is refused too, unless AllowMassDelete.
	MaxDelete       float64
	AllowMassDelete bool
	// WarnWithin makes certificates expiring within it warnings and lists
	// them in Status.Expiring (default 720h).
	WarnWithin time.Duration
	// Now is the clock of validity checks; nil is time.Now.
	Now func() time.Time
	// SlowFetch is how long a fetch may take before the log says it is
	// slow (and again at every further SlowFetch); 0 means 10s.
	SlowFetch time.Duration
	// Hygiene, when set, runs the certificate hygiene checks (certcheck)
	// in validation and on resolved material.
	Hygiene *schema.Hygiene
	// Signatures, unless its Mode is off, applies only revisions signed
	// by its keys; see [Signatures].
	Signatures Signatures
}

// Reconciler drives the gateway from a source.
type Reconciler struct {
	opts    Options
	origin  source.Source
	log     *slog.Logger
	trigger chan struct{} // capacity 1: pending triggers coalesce
	sem     chan struct{} // capacity 1: held by the running reconcile
	base    atomic.Pointer[context.Context]
	calls   singleflight.Group // joins callers of ReconcileNow to the queued run

	ready    atomic.Bool
	status   atomic.Pointer[Status]
	entities atomic.Pointer[plan.Set] // the applied state's infos

	// Guarded by sem (used by the running reconcile only).
	loader  *loader
	applied *appliedState
	// rebuild makes the next build parse every entity again, after the
	// gateway refused an Apply: entities reused from applied come without
	// their keys (see gatewayConfig).
	rebuild bool
	// live are the builds of this reconcile whose entities are live,
	// until the load they are of goes to rest when it is done (restBuilds).
	live      []*built
	refused   *StalledError // of refusedRev, given again while it is current
	refusedAt string        // the revision refused last, until a new one comes
	delivered []string      // by sink: the last revision it received
}

// appliedState is what the gateway serves.
type appliedState struct {
	revision string
	tree     *source.Tree
	built    map[string]*built    // by entity name
	infos    *plan.Set            // the descriptions, packed
	refs     bool                 // some entity uses a secret reference, or partial
	refd     []string             // names of the builds with secret references, built again at every run
	partial  bool                 // some entity was left out or kept at its last good build (partial.go)
	unserved []*schema.Entity     // the entities left out (partial.go), tried again at every run
	load     weak.Pointer[loaded] // the load the entities are from, for the next load's delta (resolveDelta)
	plan     *plan.Plan           // of the revision's last apply, until every sink has it
}

// Retry and polling timing: one backoff policy (internal/backoff) for
// retries, ±10% jitter on the polling interval.
var retryPolicy = backoff.Policy{Min: time.Second, Max: 5 * time.Minute, Jitter: 0.2}

// pollDelay is the wait before the next interval poll.
func pollDelay(interval time.Duration) time.Duration {
	return backoff.Policy{Min: interval, Max: interval, Jitter: 0.1}.Delay(1)
}

// New returns a Reconciler; it does nothing until Run or ReconcileNow.
func New(opts Options) *Reconciler {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.MaxDelete <= 0 || opts.MaxDelete > 1 {
		opts.MaxDelete = 0.5
	}
	if opts.WarnWithin == 0 {
		opts.WarnWithin = schema.DefaultWarnWithin
	}
	if opts.SlowFetch <= 0 {
		opts.SlowFetch = 10 * time.Second
	}
	origin := opts.Source
	if origin == nil {
		origin = source.NewFS(opts.FS, "embedded")
	}
	r := &Reconciler{
		opts:      opts,
		origin:    origin,
		log:       log,
		trigger:   make(chan struct{}, 1),
		sem:       make(chan struct{}, 1),
		loader:    newLoader(opts.Path, schema.Options{WarnWithin: opts.WarnWithin, Now: opts.Now, Hygiene: opts.Hygiene}).leanWhen(!needsPEM(opts.Sinks)),
		delivered: make([]string, len(opts.Sinks)),
	}
	if s, ok := origin.(interface{ Select(source.Selector) }); ok {
		s.Select(loads(opts.Path)) // read only what the loader reads
	}
	r.status.Store(&Status{Source: origin.String()})
	r.entities.Store(&plan.Set{})
	return r
}

// Ready reports whether a revision has been applied (or restored at start).
func (r *Reconciler) Ready() bool { return r.ready.Load() }

// Status returns the current status snapshot. It is immutable: do not
// modify it.
func (r *Reconciler) Status() *Status { return r.status.Load() }

// Entities returns the running entities sorted by name.
func (r *Reconciler) Entities() []plan.EntityInfo { return r.entities.Load().Infos() }

// Descriptions returns the running entities' descriptions, packed: what
// Entities unpacks. The Set is immutable; a reader that looks at a few
// entities, or at a few fields of each (metrics), unpacks only those.
func (r *Reconciler) Descriptions() *plan.Set { return r.entities.Load() }

// Trigger asks for a reconcile soon, whatever the backoff: webhooks and
// POST /api/v1/reconcile call it. It never blocks; triggers that arrive
// while one is pending coalesce. Run must be running for it to take
// effect.
func (r *Reconciler) Trigger() {
	select {
	case r.trigger <- struct{}{}:
	default:
	}
}

// Run restores the last applied revision from the data dir, reconciles,
// and then reconciles on every trigger, poll and retry until ctx ends.
//
// After a failed attempt the next one waits for the backoff (1s doubling
// to 5m, ±20%): the interval poll does not run earlier, so a source that
// is down is not asked every interval (issue 16). Triggers run at once.
func (r *Reconciler) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.base.Store(&ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	// A reconcile runs in ReconcileNow's goroutine: wait for one in
	// progress, so that what it does (the data dir record) is done when
	// Run returns.
	defer func() { r.sem <- struct{}{}; <-r.sem }()
	defer cancel() // runs first
	if w, ok := r.origin.(source.Watcher); ok {
		wg.Go(func() {
			if err := w.Watch(ctx, r.Trigger); err != nil {
				r.log.Warn("not watching the source; changes are seen on the next interval", "err", err)
			}
		})
	}
	lintStore := r.openLintStore()
	defer r.saveLintStore(lintStore) // what the last reconcile linted
	r.restore(ctx)
	released := false
	release := func() {
		if !released && r.Ready() {
			released = true
			r.releaseColdStart()
		}
	}
	release()

	next := time.NewTimer(time.Hour)
	next.Stop()
	defer next.Stop()
	failures := 0
	r.Trigger()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.trigger:
		case <-next.C:
		}
		att, err := r.ReconcileNow(ctx)
		if err != nil || ctx.Err() != nil {
			return nil // shutting down
		}
		release()
		r.saveLintStore(lintStore)
		next.Stop()
		switch {
		case att.Result == ResultFailed:
			failures++
			d := retryPolicy.Delay(failures)
			next.Reset(d)
			r.log.Info("will retry", "in", d.Round(time.Millisecond), "failures", failures)
		case r.opts.Interval > 0:
			failures = 0
			next.Reset(pollDelay(r.opts.Interval))
		default:
			failures = 0
		}
	}
}

// ReconcileNow runs a reconcile, or joins one that has not started yet, and
// returns its result. It returns an error only when ctx ends first; the
// attempt's own problems are in the Attempt.
func (r *Reconciler) ReconcileNow(ctx context.Context) (*Attempt, error) {
	// Callers that arrive while a run is queued (waiting for the running
	// one) join it; once it starts, the key is forgotten and the next
	// caller queues a new run, which sees what changed meanwhile.
	ch := r.calls.DoChan("queued", func() (any, error) {
		run := r.runContext(ctx)
		select {
		case r.sem <- struct{}{}:
		case <-run.Done():
			r.calls.Forget("queued")
			return nil, run.Err()
		}
		r.calls.Forget("queued")
		defer func() { <-r.sem }()
		return r.reconcile(run, nil), nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return res.Val.(*Attempt), nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// runContext is the context a reconcile runs with: Run's, so that
// shutdown stops it, not that of a caller who may stop waiting.
func (r *Reconciler) runContext(ctx context.Context) context.Context {
	if p := r.base.Load(); p != nil {
		return *p
	}
	return context.WithoutCancel(ctx)
}

// restore applies the last applied revision from the source's local
// storage ([source.Opener]), so that the gateway serves before the source
// is reachable (DESIGN.md 6).
func (r *Reconciler) restore(ctx context.Context) {
	rs, ok := r.origin.(source.Opener)
	if !ok || r.opts.DataDir == "" {
		return
	}
	st, err := loadState(r.opts.DataDir)
	if err != nil {
		r.log.Warn("cannot read the last applied revision; starting empty", "err", err)
		return
	}
	if st == nil || st.Source != r.origin.String() {
		return
	}
	t, err := rs.Open(ctx, st.Revision)
	if err != nil {
		r.log.Warn("cannot restore the last applied revision from the local clone", "revision", st.Revision, "err", err)
		return
	}
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		return
	}
	defer func() { <-r.sem }()
	if att := r.reconcile(ctx, t); att.Result == ResultApplied {
		r.log.Info("restored the last applied revision", "revision", st.Revision)
	}
}

// releaseColdStart gives back what a cold start leaves behind: the
// objects the source keeps decoded (go-git's cache, full of blobs read
// once), then the free heap, to the operating system at once. Validating
// every file of a large repository makes several times the garbage of what
// stays (parse trees, file bytes, decoded copies): with 10,000 entities the
// heap peaks near three times its resident size, and the runtime would
// give those pages back over minutes, the daemon's resident set staying
// near the peak meanwhile. Run calls it once, when the first revision is
// served; it costs one collection.
func (r *Reconciler) releaseColdStart() {
	if o, ok := r.origin.(objectReleaser); ok {
		o.ReleaseObjects()
	}
	freeOSMemory()
}

// objectReleaser is a source that keeps decoded objects it can drop
// ([source.Git]).
type objectReleaser interface{ ReleaseObjects() }

var _ objectReleaser = (*source.Git)(nil)

// freeOSMemory is debug.FreeOSMemory; a variable for the tests.
var freeOSMemory = debug.FreeOSMemory

func (r *Reconciler) now() time.Time {
	if r.opts.Now != nil {
		return r.opts.Now()
	}
	return time.Now()
}
