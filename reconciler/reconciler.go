package reconciler

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"certops/gateway"
	"certops/plan"
	"certops/schema"
	"certops/source"
)

// Applier is the gateway as the reconciler uses it.
type Applier interface {
	Apply(gateway.Config) error
}

var _ Applier = (*gateway.Server)(nil)

// Resolver returns the value of a secret reference as written in an entity
// file ("$env://NAME", "$secret://vault/..."). The secrets package
// implements it. If the Resolver also has a method `Stale(ref string)
// error`, a non-nil result marks the entities that use ref as degraded.
type Resolver interface {
	Resolve(ctx context.Context, ref string) ([]byte, error)
}

// ErrNoResolver is the (retryable) error of a secret reference when
// Options.Secrets is nil.
var ErrNoResolver = errors.New("no secret resolver configured")

// Staler is a Resolver that knows when a value it returns may be out of
// date (its last refresh failed and the cached value is served).
type Staler interface {
	// Stale returns why the value of ref may be out of date, or nil. The
	// entities that use ref are listed as degraded in the status.
	Stale(ref string) error
}

// Retainer is a Resolver that caches values and can forget them.
type Retainer interface {
	// Retain is called after each applied revision with every reference
	// it uses; the Resolver may forget (and stop refreshing) the others.
	Retain(refs []string)
}

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
	// Observe, when non-nil, is called after every reconcile (metrics).
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
}

// Reconciler drives the gateway from a source.
type Reconciler struct {
	opts    Options
	origin  source.Source
	log     *slog.Logger
	trigger chan struct{} // capacity 1: pending triggers coalesce
	sem     chan struct{} // capacity 1: held by the running reconcile
	base    atomic.Pointer[context.Context]

	callMu sync.Mutex // guards next
	next   *runCall   // the queued run that new callers join

	ready    atomic.Bool
	status   atomic.Pointer[Status]
	entities atomic.Pointer[[]plan.EntityInfo]

	// Guarded by sem (used by the running reconcile only).
	loader     *loader
	applied    *appliedState
	stalledRev string
	stalled    []Problem
	delivered  []string // by sink: the last revision it received
}

// runCall is one reconcile that callers wait for.
type runCall struct {
	done chan struct{}
	att  *Attempt
	err  error
}

// appliedState is what the gateway serves.
type appliedState struct {
	revision string
	tree     *source.Tree
	built    map[string]*built // by entity name
	infos    []plan.EntityInfo // sorted by name
	refs     bool              // some entity uses a secret reference
	plan     *plan.Plan        // of the revision's apply
}

// built is an entity turned into gateway input.
type built struct {
	key    string // source position, content and secret values it was built from
	entity *schema.Entity
	info   plan.EntityInfo
	gw     gateway.Entity
	refs   []string
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
		opts.WarnWithin = 720 * time.Hour
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
		loader:    newLoader(opts.Path, schema.Options{WarnWithin: opts.WarnWithin, Now: opts.Now}),
		delivered: make([]string, len(opts.Sinks)),
	}
	r.status.Store(&Status{Source: origin.String()})
	r.entities.Store(&[]plan.EntityInfo{})
	return r
}

// Ready reports whether a revision has been applied (or restored at start).
func (r *Reconciler) Ready() bool { return r.ready.Load() }

// Status returns the current status snapshot. It is immutable: do not
// modify it.
func (r *Reconciler) Status() *Status { return r.status.Load() }

// Entities returns the running entities sorted by name.
func (r *Reconciler) Entities() []plan.EntityInfo { return slices.Clone(*r.entities.Load()) }

// Trigger asks for a reconcile soon. It never blocks; triggers that arrive
// while one is pending coalesce. Run must be running for it to take effect.
func (r *Reconciler) Trigger() {
	select {
	case r.trigger <- struct{}{}:
	default:
	}
}

// Run restores the last applied revision from the data dir, reconciles,
// and then reconciles on every trigger, interval and retry until ctx ends.
func (r *Reconciler) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.base.Store(&ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel() // runs before wg.Wait
	if w, ok := r.origin.(source.Watcher); ok {
		wg.Go(func() {
			if err := w.Watch(ctx, r.Trigger); err != nil {
				r.log.Warn("not watching the source; changes are seen on the next interval", "err", err)
			}
		})
	}
	r.restore(ctx)

	var poll <-chan time.Time
	pollTimer := time.NewTimer(time.Hour)
	pollTimer.Stop()
	defer pollTimer.Stop()
	retryTimer := time.NewTimer(time.Hour)
	retryTimer.Stop()
	defer retryTimer.Stop()
	var retry <-chan time.Time
	failures := 0

	r.Trigger()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-r.trigger:
		case <-poll:
		case <-retry:
		}
		att, err := r.ReconcileNow(ctx)
		if err != nil || ctx.Err() != nil {
			return nil // shutting down
		}
		if att.Result == ResultFailed {
			failures++
			d := backoff(failures)
			retryTimer.Reset(d)
			retry = retryTimer.C
			r.log.Info("will retry", "in", d.Round(time.Millisecond), "failures", failures)
		} else {
			failures = 0
			retryTimer.Stop()
			retry = nil
		}
		if r.opts.Interval > 0 {
			pollTimer.Reset(jitter(r.opts.Interval, 0.1))
			poll = pollTimer.C
		}
	}
}

// ReconcileNow runs a reconcile, or joins one that has not started yet, and
// returns its result. It returns an error only when ctx ends first; the
// attempt's own problems are in the Attempt.
func (r *Reconciler) ReconcileNow(ctx context.Context) (*Attempt, error) {
	r.callMu.Lock()
	c := r.next
	owner := c == nil
	if owner {
		c = &runCall{done: make(chan struct{})}
		r.next = c
	}
	r.callMu.Unlock()
	if !owner {
		select {
		case <-c.done:
			return c.att, c.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		r.callMu.Lock()
		if r.next == c {
			r.next = nil
		}
		r.callMu.Unlock()
		c.err = ctx.Err()
		close(c.done)
		return nil, c.err
	}
	r.callMu.Lock()
	if r.next == c {
		r.next = nil
	}
	r.callMu.Unlock()
	c.att = r.reconcile(r.runContext(ctx), nil)
	<-r.sem
	close(c.done)
	return c.att, nil
}

// runContext is the context a reconcile runs with: Run's, so that
// shutdown stops it, not that of a caller who may stop waiting.
func (r *Reconciler) runContext(ctx context.Context) context.Context {
	if p := r.base.Load(); p != nil {
		return *p
	}
	return context.WithoutCancel(ctx)
}

// Reconcile runs one reconcile and returns its problems as an error. It
// is ReconcileNow for callers that want an error.
func (r *Reconciler) Reconcile(ctx context.Context) error {
	att, err := r.ReconcileNow(ctx)
	if err != nil {
		return err
	}
	return att.Err()
}

// restore applies the last applied revision from the origin's local clone,
// so that the gateway serves before the source is reachable.
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
	att := r.reconcile(ctx, t)
	if att.Result == ResultApplied {
		r.log.Info("restored the last applied revision", "revision", st.Revision)
	}
}

// Phases of a reconcile, for RunReport.
const (
	phaseFetch   = "fetch"
	phaseLoad    = "load"
	phaseResolve = "resolve"
	phasePlan    = "plan"
	phaseApply   = "apply"
)

// runTimeout bounds one reconcile, so that a hung server cannot stop the
// daemon from retrying.
const runTimeout = 5 * time.Minute

// reconcile runs the pipeline once: fetch (unless t is given) → load →
// resolve → plan → apply → status. The caller holds sem.
func (r *Reconciler) reconcile(ctx context.Context, t *source.Tree) (result *Attempt) {
	ctx, cancel := context.WithTimeout(ctx, runTimeout)
	defer cancel()
	start := time.Now()
	phases := make(map[string]time.Duration)
	att := &Attempt{Time: r.now()}
	var runErr error
	defer func() {
		// A bug must not take the gateway down: the last applied state
		// keeps serving and the attempt says what happened. The panic value
		// is not reported: it could hold input.
		if p := recover(); p != nil {
			r.log.Error("reconcile panicked; the last applied state keeps serving", "stack", string(debug.Stack()))
			att.Result = ResultFailed
			att.Errors = []Problem{{Message: "internal error: the reconcile panicked (see the logs)", Severity: "error"}}
			runErr = errors.New("reconcile panicked")
			result = att
		}
		r.publish(att)
		if r.opts.Observe != nil {
			r.opts.Observe(RunReport{Revision: att.Revision, Result: att.Result, Phases: phases, Err: runErr})
		}
	}()
	fail := func(result string, problems []Problem, err error) *Attempt {
		att.Result, att.Errors, runErr = result, problems, err
		return att
	}
	phase := func(name string, t0 time.Time) { phases[name] += time.Since(t0) }

	if t == nil {
		t0 := time.Now()
		var err error
		t, err = r.origin.Fetch(ctx)
		phase(phaseFetch, t0)
		if err != nil {
			if ctx.Err() == nil || errors.Is(ctx.Err(), context.DeadlineExceeded) {
				r.log.Warn("fetch failed; the last applied state keeps serving", "source", r.origin.String(), "err", err)
			}
			return fail(ResultFailed, []Problem{problemOf(err)}, err)
		}
	}
	att.Revision = t.Revision
	if a := r.applied; a != nil && a.revision == t.Revision && !a.refs {
		return r.deliver(ctx, att)
	}
	if t.Revision == r.stalledRev {
		r.rotateApplied(ctx)
		return fail(ResultStalled, r.stalled, &AttemptError{Attempt: &Attempt{Result: ResultStalled, Errors: r.stalled}})
	}

	t0 := time.Now()
	res, err := r.loader.load(ctx, t)
	phase(phaseLoad, t0)
	if err != nil {
		r.log.Warn("cannot read the revision; the last applied state keeps serving", "revision", t.Revision, "err", err)
		return fail(ResultFailed, []Problem{problemOf(err)}, err)
	}
	if err := res.problems.Err(); err != nil {
		return r.stall(att, t.Revision, problemsOf(res.problems), err)
	}
	for _, w := range res.problems {
		r.log.Debug("warning", "revision", t.Revision, "problem", w.Error())
	}
	if res.files == 0 {
		r.log.Warn("no entity files in the revision; check --path", "revision", t.Revision, "path", r.opts.Path)
	}

	t0 = time.Now()
	desired, degraded, unresolved, invalid := r.build(ctx, res.entities)
	phase(phaseResolve, t0)
	if len(invalid) > 0 {
		problems := append(invalid, unresolved...)
		att := r.stall(att, t.Revision, problems, &AttemptError{Attempt: &Attempt{Result: ResultStalled, Errors: problems}})
		// The problems come from resolved secret values, which change
		// without a commit (a certificate rotated before its key): check
		// the revision again on the next trigger instead of waiting for a
		// new one.
		r.stalledRev, r.stalled = "", nil
		return att
	}
	if len(unresolved) > 0 {
		err := &AttemptError{Attempt: &Attempt{Result: ResultFailed, Errors: unresolved}}
		r.log.Warn("cannot resolve secrets; the last applied state keeps serving", "revision", t.Revision, "err", err)
		return fail(ResultFailed, unresolved, err)
	}

	t0 = time.Now()
	infos := make([]plan.EntityInfo, len(desired))
	for i, b := range desired {
		infos[i] = b.info
	}
	slices.SortFunc(infos, func(a, b plan.EntityInfo) int { return strings.Compare(a.Name, b.Name) })
	p := r.plan(desired)
	phase(phasePlan, t0)
	running := 0
	if r.applied != nil {
		running = len(r.applied.infos)
	}
	if err := r.massDelete(p, running); err != nil {
		return r.stall(att, t.Revision, []Problem{problemOf(err)}, err)
	}
	if a := r.applied; a != nil && a.revision == t.Revision && p.Empty() && sameBuild(a.built, desired) {
		r.publishDegraded(degraded)
		return r.deliver(ctx, att)
	}

	t0 = time.Now()
	cfg := gateway.Config{Entities: make([]gateway.Entity, len(desired))}
	for i, b := range desired {
		cfg.Entities[i] = b.gw
	}
	err = r.opts.Gateway.Apply(cfg)
	phase(phaseApply, t0)
	if err != nil {
		return r.stall(att, t.Revision, []Problem{problemOf(err)}, err)
	}

	next := &appliedState{revision: t.Revision, tree: t, built: make(map[string]*built, len(desired)), infos: infos, plan: p}
	for _, b := range desired {
		next.built[b.entity.Name] = b
		next.refs = next.refs || len(b.refs) > 0
	}
	r.applied = next
	r.stalledRev, r.stalled = "", nil
	if rt, ok := r.opts.Secrets.(Retainer); ok {
		var refs []string
		for _, b := range desired {
			refs = append(refs, b.refs...)
		}
		rt.Retain(refs)
	}
	r.entities.Store(&infos)
	r.ready.Store(true)
	att.Result = ResultApplied
	r.publishApplied(att, p, degraded)
	defer r.deliver(ctx, att)
	r.log.Info("revision applied", "revision", t.Revision, "entities", len(desired),
		"created", p.Summary.Create, "updated", p.Summary.Update, "deleted", p.Summary.Delete,
		"validated_files", res.validated, "removed_files", res.removed, "duration", time.Since(start).Round(time.Microsecond))
	if _, ok := r.origin.(source.Opener); ok && r.opts.DataDir != "" {
		if err := saveState(r.opts.DataDir, savedState{Source: r.origin.String(), Revision: t.Revision, Time: att.Time}); err != nil {
			r.log.Warn("cannot record the applied revision; a restart will wait for the source", "err", err)
		}
	}
	return att
}

// rotateApplied applies rotated secret values to the applied revision
// while a newer revision is refused: a rotation needs no commit, and an
// invalid commit must not hold it back.
func (r *Reconciler) rotateApplied(ctx context.Context) {
	a := r.applied
	if a == nil || !a.refs {
		return
	}
	entities := make([]*schema.Entity, 0, len(a.built))
	for _, info := range a.infos {
		entities = append(entities, a.built[info.Name].entity)
	}
	desired, degraded, unresolved, invalid := r.build(ctx, entities)
	if len(unresolved)+len(invalid) > 0 || sameBuild(a.built, desired) {
		return
	}
	cfg := gateway.Config{Entities: make([]gateway.Entity, len(desired))}
	for i, b := range desired {
		cfg.Entities[i] = b.gw
	}
	if err := r.opts.Gateway.Apply(cfg); err != nil {
		r.log.Warn("cannot apply rotated secrets", "revision", a.revision, "err", err)
		return
	}
	next := &appliedState{revision: a.revision, tree: a.tree, built: make(map[string]*built, len(desired)), refs: true, plan: a.plan}
	for _, b := range desired {
		next.built[b.entity.Name] = b
		next.infos = append(next.infos, b.info)
	}
	slices.SortFunc(next.infos, func(x, y plan.EntityInfo) int { return strings.Compare(x.Name, y.Name) })
	r.applied = next
	r.entities.Store(&next.infos)
	r.publishDegraded(degraded)
	r.log.Info("rotated secrets applied to the running revision", "revision", a.revision)
}

// plan diffs the desired entities against the applied ones. Entities
// reused unchanged from the applied state (the same build) are counted as
// unchanged without being compared, so a one-file commit in a large
// repository compares one entity.
func (r *Reconciler) plan(desired []*built) *plan.Plan {
	var running, changed []plan.EntityInfo
	reused := make(map[string]bool)
	for _, b := range desired {
		if r.applied != nil && r.applied.built[b.entity.Name] == b {
			reused[b.entity.Name] = true
			continue
		}
		changed = append(changed, b.info)
	}
	if r.applied != nil {
		for _, info := range r.applied.infos {
			if !reused[info.Name] {
				running = append(running, info)
			}
		}
	}
	p := plan.Diff(running, changed)
	p.Summary.Unchanged += len(reused)
	return p
}

// stall refuses a revision: it is not applied, every problem is logged at
// Warn, and the reconciler waits for a new revision.
func (r *Reconciler) stall(att *Attempt, revision string, problems []Problem, err error) *Attempt {
	r.stalledRev, r.stalled = revision, problems
	const maxLogged = 100
	for i, p := range problems {
		if i == maxLogged {
			r.log.Warn("more problems not logged; see the status", "revision", revision, "count", len(problems)-maxLogged)
			break
		}
		r.log.Warn("revision refused", "revision", revision, "problem", p.String())
	}
	r.log.Warn("revision refused; the last applied state keeps serving until a new revision", "revision", revision, "problems", len(problems))
	att.Result, att.Errors = ResultStalled, problems
	return att
}

// massDelete refuses a plan that deletes too much of what runs.
func (r *Reconciler) massDelete(p *plan.Plan, running int) error {
	del := p.Summary.Delete
	if r.opts.AllowMassDelete || running == 0 || del == 0 {
		return nil
	}
	if del == running || float64(del) > r.opts.MaxDelete*float64(running) {
		return fmt.Errorf("refusing a plan that deletes %d of %d running entities (the limit is %g%%, and never all): check --source and --path; if this is intended, run with --allow-mass-delete or a higher --max-delete",
			del, running, r.opts.MaxDelete*100)
	}
	return nil
}

// build resolves each entity's secret references and turns it into gateway
// input, reusing what the previous revision built when the entity's
// source and secret values are unchanged. A failure to resolve is
// retryable; a resolved value that is not valid material stalls.
func (r *Reconciler) build(ctx context.Context, entities []*schema.Entity) (out []*built, degraded []Degraded, unresolved, invalid []Problem) {
	values := make(map[string][]byte)
	resolveErr := make(map[string]error)
	resolve := func(ref string) ([]byte, error) {
		if v, ok := values[ref]; ok {
			return v, nil
		}
		if err, ok := resolveErr[ref]; ok {
			return nil, err
		}
		var v []byte
		var err error
		if r.opts.Secrets == nil {
			err = ErrNoResolver
		} else {
			v, err = r.opts.Secrets.Resolve(ctx, ref)
		}
		if err != nil {
			resolveErr[ref] = err
			return nil, err
		}
		values[ref] = v
		return v, nil
	}
	var stale Staler
	if s, ok := r.opts.Secrets.(Staler); ok {
		stale = s
	}
	var old map[string]*built
	if r.applied != nil {
		old = r.applied.built
	}
	for _, e := range entities {
		// An entity from a cached file result is the same pointer as the
		// one applied: without references, nothing about it can differ.
		if b, ok := old[e.Name]; ok && b.entity == e && len(b.refs) == 0 {
			out = append(out, b)
			continue
		}
		refs := references(e)
		h := sha256.New()
		fmt.Fprintf(h, "%s\x00%s\x00%s\x00", e.Pos, e.Name, e.Hash)
		var failed bool
		for _, ref := range refs {
			v, err := resolve(ref)
			if err != nil {
				unresolved = append(unresolved, Problem{File: e.Pos.File, Line: e.Pos.Line, Column: e.Pos.Col,
					Message: fmt.Sprintf("entity %s: resolve %s: %v", e.Name, ref, err), Severity: "error"})
				failed = true
				continue
			}
			// The digest of secret values stays in memory and only tells
			// whether a value changed.
			fmt.Fprintf(h, "%s\x00%d\x00%s\x00", ref, len(v), v)
			if stale != nil {
				if err := stale.Stale(ref); err != nil {
					degraded = append(degraded, Degraded{Entity: e.Name, Reason: fmt.Sprintf("%s: %v", ref, err)})
				}
			}
		}
		if failed {
			continue
		}
		key := hex.EncodeToString(h.Sum(nil))
		if b, ok := old[e.Name]; ok && b.key == key {
			out = append(out, b)
			continue
		}
		values := func(v string) ([]byte, error) {
			if schema.IsReference(v) {
				return resolve(v)
			}
			return []byte(v), nil
		}
		m, err := e.Material(values)
		if err != nil {
			invalid = append(invalid, Problem{File: e.Pos.File, Line: e.Pos.Line, Column: e.Pos.Col, Message: err.Error(), Severity: "error"})
			continue
		}
		info := plan.Describe(e, m)
		if schema.IsReference(e.ClientCA) {
			// The pool does not give its certificates back: describe the
			// resolved bundle, so that a rotated client CA shows in plans.
			if v, err := resolve(e.ClientCA); err == nil {
				info.ClientCA = nil
				info.ClientCA = plan.DescribeCAs(v, e.ClientCA)
			}
		}
		// The gateway keeps its own compact copy of the chain; a parsed
		// leaf kept here (or in the entity, which the file cache keeps) for
		// the next Apply would be the pointer-dense heap DESIGN.md 8 warns
		// about. Measured at 3,000 entities: 10% less heap, no slower
		// Apply (the gateway checks unchanged leaves without parsing them).
		chains := slices.Clone(m.Chains)
		for i := range chains {
			chains[i].Leaf = nil
		}
		e.ReleaseMaterial()
		minV, maxV := tlsVersions(e.Protocols)
		out = append(out, &built{
			key:    key,
			entity: e,
			info:   info,
			refs:   refs,
			gw: gateway.Entity{
				Name:        e.Name,
				Client:      e.Type == schema.TypeClient,
				SNIs:        e.SNIs,
				Chains:      chains,
				ClientCAs:   m.ClientCAs,
				ClientDepth: e.ClientDepth,
				MinVersion:  minV,
				MaxVersion:  maxV,
			},
		})
	}
	return out, degraded, unresolved, invalid
}

// references lists the secret references of an entity, as written.
func references(e *schema.Entity) []string {
	var refs []string
	add := func(v string) {
		if schema.IsReference(v) && !slices.Contains(refs, v) {
			refs = append(refs, v)
		}
	}
	for _, c := range e.Chains {
		add(c.Cert)
		add(c.Key)
	}
	add(e.ClientCA)
	return refs
}

func sameBuild(old map[string]*built, desired []*built) bool {
	if len(old) != len(desired) {
		return false
	}
	for _, b := range desired {
		if o, ok := old[b.entity.Name]; !ok || o.key != b.key {
			return false
		}
	}
	return true
}

func (r *Reconciler) now() time.Time {
	if r.opts.Now != nil {
		return r.opts.Now()
	}
	return time.Now()
}

// publish records an attempt in the status, and the certificates of the
// applied state that now expire within the warning window (a certificate
// enters the window without any commit).
func (r *Reconciler) publish(att *Attempt) {
	s := *r.status.Load()
	s.LastAttempt = att
	s.Expiring = nil
	if r.applied != nil {
		limit := r.now().Add(r.opts.WarnWithin)
		for _, info := range r.applied.infos {
			for i, c := range info.Chains {
				if !c.NotAfter.IsZero() && c.NotAfter.Before(limit) {
					s.Expiring = append(s.Expiring, ExpiringCert{Entity: info.Name, Chain: i, Subject: c.Subject, NotAfter: c.NotAfter})
				}
			}
		}
	}
	r.status.Store(&s)
}

func (r *Reconciler) publishDegraded(degraded []Degraded) {
	old := r.status.Load()
	s := *old
	s.Degraded = degraded
	r.status.Store(&s)
}

// publishApplied records a newly applied state in the status.
func (r *Reconciler) publishApplied(att *Attempt, p *plan.Plan, degraded []Degraded) {
	s := *r.status.Load()
	s.Applied = &Revision{ID: att.Revision, Time: att.Time}
	s.Entities = len(r.applied.infos)
	s.Degraded = degraded
	summary := p.Summary
	s.Plan = &summary
	r.status.Store(&s)
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
