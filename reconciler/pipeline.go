package reconciler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"slices"
	"time"
	"weak"

	"certops/gateway"
	"certops/plan"
	"certops/schema"
	"certops/source"
)

// runTimeout bounds one reconcile, so that a hung server cannot stop the
// daemon from retrying.
const runTimeout = 5 * time.Minute

// A reconcile is a sequence of phases, each a method with one input and
// one output:
//
//	fetch   ctx            -> *source.Tree   (retryable)
//	verify  *source.Tree   -> error          (stalled: not signed by a trusted key)
//	load    *source.Tree   -> *loadResult    (stalled: invalid; retryable: unreadable)
//	resolve []*schema.Entity -> *desired     (retryable: a store is down; stalled: bad values)
//	plan    *desired       -> *plan.Plan     (stalled: mass delete)
//	apply   *change        -> error          (stalled: the gateway refuses; retryable: a sink)
//	settle  result, error  -> *Attempt       (the one place the outcome is decided)
//
// A phase returns a *StalledError or a *RetryableError; settle turns it
// into the attempt's result, its problems (status) and its log lines.

// run is the bookkeeping of one reconcile: when it started and how long
// each phase took.
type run struct {
	start  time.Time
	att    *Attempt
	phases map[Phase]time.Duration
}

// phase records that the run enters p, for the status, and returns a func
// that adds the phase's duration.
func (r *Reconciler) phase(rn *run, p Phase) (done func()) {
	r.publishRunning(rn.start, p)
	t0 := time.Now()
	return func() { rn.phases[p] += time.Since(t0) }
}

// reconcile runs the pipeline once, on restored (a revision from local
// storage) or on a fresh fetch when restored is nil. The caller holds sem.
func (r *Reconciler) reconcile(ctx context.Context, restored *source.Tree) (att *Attempt) {
	ctx, cancel := context.WithTimeout(ctx, runTimeout)
	defer cancel()
	rn := &run{start: time.Now(), att: &Attempt{Time: r.now()}, phases: make(map[Phase]time.Duration)}
	defer func() {
		// A bug must not take the gateway down: the last applied state
		// keeps serving and the attempt says what happened. The panic value
		// is not reported: it could hold input.
		if p := recover(); p != nil {
			r.log.Error("reconcile panicked; "+r.serving(), "stack", string(debug.Stack()))
			att = r.settle(rn, "", retryable(PhaseApply, errors.New("internal error: the reconcile panicked (see the logs)")))
		}
		r.publish(att)
		if r.opts.Observe != nil {
			r.opts.Observe(RunReport{Revision: att.Revision, Result: att.Result, Phases: rn.phases})
		}
	}()
	defer r.restBuilds()
	result, err := r.pipeline(ctx, rn, restored)
	return r.settle(rn, result, err)
}

// restBuilds puts the results of the revision loaded last at rest, the
// reconcile done with them, and makes the builds of this reconcile hold
// their entities at rest too: then nothing long-lived holds a pointer into
// the load's results (docs/performance.md, "What closing the collector's
// part takes").
func (r *Reconciler) restBuilds() {
	moves := r.loader.freeze()
	rest := func(b *built) {
		name := b.name()
		if b.rest(moves) && r.applied != nil && r.applied.built[name] == b {
			// The key too: a live entity's name is a string of its load's
			// packed block, which the map would keep alive (an assignment
			// to a key that is there replaces the key).
			r.applied.built[b.ref.Name()] = b
		}
	}
	for _, b := range r.live {
		rest(b)
	}
	r.live = nil
	if moves.AnyMoved() && r.applied != nil {
		// Forms were merged (at most every few loads): the builds of
		// their entities follow, so that the old forms are freed.
		for _, b := range r.applied.built {
			rest(b)
		}
	}
}

// pipeline runs the phases and returns the result of a successful run, or
// the error of the phase that failed.
func (r *Reconciler) pipeline(ctx context.Context, rn *run, t *source.Tree) (Result, error) {
	if t == nil {
		var err error
		if t, err = r.fetch(ctx, rn); err != nil {
			return "", err
		}
	}
	rn.att.Revision = t.Revision
	if a := r.applied; a != nil && a.revision == t.Revision && !a.refs {
		return r.deliver(ctx, ResultUnchanged)
	}
	if err := r.verify(rn, t); err != nil {
		return "", err
	}
	if t.Revision == r.refusedAt {
		// Still the refused revision: secret values of the applied one
		// may have rotated (no commit needed), and an invalid commit must
		// not hold that back.
		r.rotate(ctx, rn)
		return "", r.refused
	}
	loaded, err := r.load(ctx, rn, t)
	if err != nil {
		return "", err
	}
	// A rotation of the served revision, or a start with nothing served,
	// applies per entity (partial.go); a new revision is all or nothing.
	partial := r.applied == nil || r.applied.revision == t.Revision
	var d *desired
	if ld := r.loader.last.delta; r.incremental(ld) {
		d, err = r.resolveDelta(ctx, rn, ld, partial)
	} else {
		entities, refs := loaded.entities()
		d, err = r.resolve(ctx, rn, entities, refs, partial)
	}
	if err != nil {
		return "", err
	}
	p, err := r.plan(rn, d)
	if err != nil {
		return "", err
	}
	if a := r.applied; a != nil && a.revision == t.Revision && p.Empty() && r.unchanged(d) {
		// The applied state is what this load builds: the next load's
		// delta is taken from it.
		a.load = weak.Make(r.loader.last)
		r.publishDegraded(d.degraded)
		return r.deliver(ctx, ResultUnchanged)
	}
	if err := r.apply(ctx, rn, &change{tree: t, desired: d, plan: p, loaded: loaded}); err != nil {
		return "", err
	}
	return r.deliver(ctx, ResultApplied)
}

// fetch brings the source up to date and returns its tree. A fetch that
// takes longer than Options.SlowFetch is logged as slow, and again at
// every further SlowFetch, so that a stalled server shows in the log while
// it holds the run.
func (r *Reconciler) fetch(ctx context.Context, rn *run) (*source.Tree, error) {
	defer r.phase(rn, PhaseFetch)()
	done := make(chan struct{})
	defer close(done)
	go func() {
		tick := time.NewTicker(r.opts.SlowFetch)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				r.log.Warn("fetch is slow; still waiting for the source", "source", r.origin.String(), "elapsed", time.Since(rn.start).Round(time.Second))
			}
		}
	}()
	t, err := r.origin.Fetch(ctx)
	if err != nil {
		return nil, retryable(PhaseFetch, fmt.Errorf("fetch %s: %w", r.origin.String(), err))
	}
	return t, nil
}

// load validates the revision's files (incrementally). Invalid entities
// stall the revision; a tree that cannot be read is retryable.
func (r *Reconciler) load(ctx context.Context, rn *run, t *source.Tree) (*loadResult, error) {
	defer r.phase(rn, PhaseLoad)()
	res, err := r.loader.load(ctx, t)
	if err != nil {
		return nil, retryable(PhaseLoad, fmt.Errorf("read revision %s: %w", t.Revision, err))
	}
	if res.failed() {
		problems := res.problems()
		var errs schema.ErrorList
		for _, p := range problems {
			if p.Severity == schema.SeverityError {
				errs = append(errs, p)
			}
		}
		// Warnings go with the errors, as the status always showed them.
		return nil, stalled(PhaseLoad, append(errs, warnings(problems)...))
	}
	if r.log.Enabled(ctx, slog.LevelDebug) {
		// Spelled out only when logged: a repository may have a warning
		// per file (certificates expiring soon), each run; the files' at
		// rest are made again for it.
		for _, w := range res.problems() {
			r.log.Debug("warning", "revision", t.Revision, "problem", w.Error())
		}
	}
	if res.files == 0 {
		r.log.Warn("no entity files in the revision; check --path", "revision", t.Revision, "path", r.opts.Path)
	}
	return res, nil
}

func warnings(list schema.ErrorList) schema.ErrorList {
	var out schema.ErrorList
	for _, p := range list {
		if p.Severity == schema.SeverityWarning {
			out = append(out, p)
		}
	}
	return out
}

// desired is the resolved desired state: gateway input per entity.
type desired struct {
	built    []*built  // every build; nil after resolveDelta, which gives the delta alone (see builds)
	n        int       // entities
	infos    *plan.Set // the descriptions
	degraded []Degraded
	unserved []*schema.Entity // left out (partial.go), to be tried again
	partial  bool             // some entity was left out or kept at its last good build (partial.go)
	delta    *delta           // against the applied state; nil when none is applied
}

// delta is what a desired state changes in the applied one, by build: an
// entity whose build is the applied one (the same pointer: same source
// and secret values) is unchanged, the others are fresh. The later phases
// look at the delta only, so that a change of one entity among 10,000
// neither compares nor copies the others one by one where it can help it.
type delta struct {
	fresh    []*built        // builds the applied state does not have, in desired order
	replaced map[string]bool // names of fresh builds that the applied state has
	deleted  []string        // applied names that desired does not have, sorted
}

// add adds the builds of out that applied does not have (fresh; replaced
// when applied has another build of the name) and returns how many of out
// it has.
func (d *delta) add(applied map[string]*built, out []*built) (reused int) {
	for _, b := range out {
		switch old, ok := applied[b.name()]; {
		case old == b:
			reused++
		case ok:
			d.fresh = append(d.fresh, b)
			d.replaced[b.name()] = true
		default:
			d.fresh = append(d.fresh, b)
		}
	}
	return reused
}

// delta compares out with the applied state.
func (r *Reconciler) delta(out []*built) *delta {
	a := r.applied
	if a == nil {
		return nil
	}
	d := &delta{replaced: make(map[string]bool)}
	reused := d.add(a.built, out)
	if len(a.built)-reused-len(d.replaced) > 0 {
		names := make(map[string]bool, len(out))
		for _, b := range out {
			names[b.name()] = true
		}
		for i := range a.infos.Len() {
			if name := a.infos.Name(i); !names[name] {
				d.deleted = append(d.deleted, name)
			}
		}
	}
	return d
}

// small reports whether the delta changes less than a quarter of n
// entities: then merging it into the applied state beats rebuilding.
func (d *delta) small(n int) bool {
	return d != nil && 4*(len(d.fresh)+len(d.deleted)) < n
}

// infos returns the descriptions of desired with the delta d: the
// applied ones, without the replaced and deleted, with the fresh ones (see
// plan.Set.With, which copies the applied descriptions between two
// changes as runs, unread).
func (r *Reconciler) infos(d *delta) *plan.Set {
	fresh := make([]plan.EntityInfo, len(d.fresh))
	for i, b := range d.fresh {
		fresh[i] = r.infoOf(b) // not planned yet: its own description
	}
	return r.applied.infos.With(fresh, d.deleted)
}

// resolve resolves the secret references of the entities and builds the
// gateway input. A store that fails is retryable; a resolved value that is
// not valid material stalls, and the revision is checked again on the
// next trigger, since the values change without a commit (a certificate
// rotated before its key).
func (r *Reconciler) resolve(ctx context.Context, rn *run, entities []*schema.Entity, refs []schema.EntityRef, partial bool) (*desired, error) {
	defer r.phase(rn, PhaseResolve)()
	out, degraded, unresolved, invalid := r.build(ctx, entities, refs)
	left := len(invalid)+len(unresolved) > 0
	var unserved []*schema.Entity
	if left && partial {
		out, degraded, unserved = r.lastGood(entities, out, degraded, append(invalid, unresolved...))
		left = len(out) == 0 // nothing at all to serve: not a start
	}
	if left && len(invalid) > 0 {
		return nil, &StalledError{Phase: PhaseResolve, Err: append(invalid, unresolved...), Recheck: true}
	}
	if left && len(unresolved) > 0 {
		return nil, retryable(PhaseResolve, unresolved)
	}
	d := &desired{built: out, n: len(out), degraded: degraded, unserved: unserved, partial: len(invalid)+len(unresolved) > 0, delta: r.delta(out)}
	if d.delta != nil {
		d.infos = r.infos(d.delta)
		return d, nil
	}
	fresh := make([]plan.EntityInfo, len(out))
	for i, b := range out {
		fresh[i] = r.infoOf(b)
	}
	d.infos = plan.NewSet(fresh)
	return d, nil
}

// plan diffs the desired entities against the applied ones and refuses a
// plan that deletes too much. Entities reused unchanged from the applied
// state (the same build) are counted as unchanged without being compared,
// so a one-file commit in a large repository compares one entity.
func (r *Reconciler) plan(rn *run, d *desired) (*plan.Plan, error) {
	defer r.phase(rn, PhasePlan)()
	var running, changed []plan.EntityInfo
	fresh := d.built
	if dl := d.delta; dl != nil {
		fresh = dl.fresh
		// What runs of the fresh and deleted entities: the others are
		// reused.
		for _, b := range dl.fresh {
			if dl.replaced[b.name()] {
				running = append(running, r.infoOf(r.applied.built[b.name()]))
			}
		}
		for _, name := range dl.deleted {
			running = append(running, r.infoOf(r.applied.built[name]))
		}
	}
	for _, b := range fresh {
		changed = append(changed, r.infoOf(b))
	}
	p := plan.Diff(running, changed)
	p.Summary.Unchanged += d.n - len(fresh)
	n := 0
	if r.applied != nil {
		n = r.applied.infos.Len()
	}
	if err := r.massDelete(p, n); err != nil {
		return nil, stalled(PhasePlan, err)
	}
	return p, nil
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

// change is what apply makes the gateway serve.
type change struct {
	tree    *source.Tree
	desired *desired
	plan    *plan.Plan
	loaded  *loadResult // nil for a rotation of the applied revision
}

// apply makes the gateway serve the desired state (atomically: all or
// nothing) and records it as the applied state: status, entities, the
// resolver's retained references and the data dir. A gateway refusal
// stalls the revision.
func (r *Reconciler) apply(ctx context.Context, rn *run, c *change) error {
	defer r.phase(rn, PhaseApply)()
	if err := r.serve(c.desired); err != nil {
		r.rebuild = true
		return stalled(PhaseApply, fmt.Errorf("gateway: %w", err))
	}
	next := &appliedState{revision: c.tree.Revision, tree: c.tree, infos: c.desired.infos, plan: c.plan, partial: c.desired.partial,
		unserved: c.desired.unserved}
	if c.loaded != nil {
		next.load = weak.Make(r.loader.last)
	} else {
		next.load = r.applied.load // a rotation: the same entities
	}
	if dl := c.desired.delta; dl != nil && (c.desired.built == nil || dl.small(c.desired.n)) {
		// The applied map is updated in place: nothing reads the applied
		// state but this run, and nothing fails past the gateway.
		next.built = r.applied.built
		for _, name := range dl.deleted {
			delete(next.built, name)
		}
		for _, b := range dl.fresh {
			next.built[b.name()] = b
		}
		next.refd = slices.DeleteFunc(slices.Clone(r.applied.refd), func(name string) bool {
			b, ok := next.built[name]
			return !ok || len(b.refs()) == 0 || dl.replaced[name] // a replaced build is among the fresh
		})
		for _, b := range dl.fresh {
			if len(b.refs()) > 0 {
				next.refd = append(next.refd, b.name())
			}
		}
	} else {
		next.built = make(map[string]*built, len(c.desired.built))
		for _, b := range c.desired.built {
			next.built[b.name()] = b
			if len(b.refs()) > 0 {
				next.refd = append(next.refd, b.name())
			}
		}
	}
	var refs []string
	for _, name := range next.refd {
		refs = append(refs, next.built[name].refs()...)
	}
	next.refs = len(refs) > 0 || c.desired.partial // a partial state is resolved again at every run
	r.applied = next
	if c.loaded != nil {
		r.refusedAt, r.refused = "", nil // a new revision is served
	}
	if rt, ok := r.opts.Secrets.(Retainer); ok {
		rt.Retain(refs)
	}
	r.entities.Store(next.infos)
	r.ready.Store(true)
	r.publishApplied(rn.att.Time, c.plan, c.desired.degraded)
	if c.loaded == nil {
		r.log.Info("rotated secrets applied to the running revision", "revision", next.revision)
		return nil
	}
	r.log.Info("revision applied", "revision", next.revision, "entities", c.desired.n,
		"created", c.plan.Summary.Create, "updated", c.plan.Summary.Update, "deleted", c.plan.Summary.Delete,
		"validated_files", c.loaded.validated, "removed_files", c.loaded.removed, "duration", time.Since(rn.start).Round(time.Microsecond))
	if _, ok := r.origin.(source.Opener); ok && r.opts.DataDir != "" {
		if err := saveState(r.opts.DataDir, savedState{Source: r.origin.String(), Revision: next.revision, Time: rn.att.Time}); err != nil {
			r.log.Warn("cannot record the applied revision; a restart will wait for the source", "err", err)
		}
	}
	return nil
}

// serve makes the gateway serve the enabled entities of desired (a
// disabled entity, APISIX status: 0, is planned and shown, not served: it
// may share its SNIs with the enabled one). A gateway that takes changes
// ([ChangeApplier]) is given only the entities built anew since the
// applied state and the names it no longer serves, when they are a small
// part of the whole: the applied state is what it serves, as Apply is all
// or nothing and the reconciler its only caller. Otherwise, and at the
// first apply, it is given the whole Config.
func (r *Reconciler) serve(d *desired) error {
	ca, ok := r.opts.Gateway.(ChangeApplier)
	if !ok || r.applied == nil || d.delta == nil || 2*(len(d.delta.fresh)+len(d.delta.deleted)) > d.n {
		served, _ := r.opts.Gateway.(chainServer)
		return r.opts.Gateway.Apply(gatewayConfig(r.builds(d), served)) // a full build is cheaper
	}
	changed, removed := gatewayChanges(r.applied.built, d.delta)
	if len(changed)+len(removed) == 0 {
		return nil
	}
	return ca.ApplyChanges(changed, removed)
}

// gatewayChanges returns the gateway input of the fresh enabled entities
// of a delta (handing over their parsed leaves and keys, as gatewayConfig
// does), and the names applied served that the delta deletes or disables.
func gatewayChanges(applied map[string]*built, d *delta) (changed []gateway.Entity, removed []string) {
	served := func(b *built) bool { return b != nil && !b.disabled() }
	for _, b := range d.fresh {
		gw, ok := b.handOver(nil) // a fresh build has its leaves
		if !ok {
			if served(applied[b.name()]) {
				removed = append(removed, b.name())
			}
			continue
		}
		changed = append(changed, gw)
	}
	for _, name := range d.deleted {
		if served(applied[name]) {
			removed = append(removed, name)
		}
	}
	return changed, removed
}

// rotate applies rotated secret values to the applied revision, through
// the same resolve, plan and apply phases, while a newer revision is
// refused. It changes nothing when no value changed; a failure is logged
// and leaves the applied state serving.
func (r *Reconciler) rotate(ctx context.Context, rn *run) {
	a := r.applied
	if a == nil || !a.refs {
		return
	}
	var d *desired
	var err error
	if nothing := (&loadDelta{base: a.load}); r.incremental(nothing) {
		d, err = r.resolveDelta(ctx, rn, nothing, true) // the entities with references
	} else {
		entities := make([]*schema.Entity, 0, len(a.built)+len(a.unserved))
		refs := make([]schema.EntityRef, 0, cap(entities))
		for i := range a.infos.Len() {
			b := a.built[a.infos.Name(i)]
			entities, refs = append(entities, b.ent()), append(refs, b.ref)
		}
		// The entities left out are tried again too: they are degraded,
		// not gone, while a newer revision is refused.
		for _, e := range a.unserved {
			entities, refs = append(entities, e), append(refs, schema.EntityRef{})
		}
		// Problems in the load's order, as resolveDelta lists them.
		sortByPosition(entities, refs)
		d, err = r.resolve(ctx, rn, entities, refs, true)
	}
	if err == nil && r.unchanged(d) {
		r.publishDegraded(d.degraded) // a stale value's latest reason
		return
	}
	var p *plan.Plan
	if err == nil {
		p, err = r.plan(rn, d)
	}
	if err == nil {
		err = r.apply(ctx, rn, &change{tree: a.tree, desired: d, plan: p})
	}
	if err != nil {
		r.log.Warn("cannot apply rotated secrets to the running revision", "revision", a.revision, "err", err)
	}
}

// settle decides the attempt from the pipeline's result and error: the
// one place where an error becomes a result, status problems and log
// lines. A stalled revision is remembered so that it is not validated
// again until a new revision comes (unless it asks for a recheck).
func (r *Reconciler) settle(rn *run, result Result, err error) *Attempt {
	att := rn.att
	var se *StalledError
	switch {
	case err == nil:
		att.Result = result
		return att
	case errors.As(err, &se):
		att.Result, att.Errors, att.err = ResultStalled, problems(err), err
		again := se == r.refused // the refused revision, seen again: logged once
		r.refusedAt, r.refused = att.Revision, se
		if se.Recheck {
			r.refusedAt, r.refused = "", nil
		}
		if again {
			return att
		}
		const maxLogged = 100
		for i, p := range att.Errors {
			if i == maxLogged {
				r.log.Warn("more problems not logged; see the status", "revision", att.Revision, "count", len(att.Errors)-maxLogged)
				break
			}
			r.log.Warn("revision refused", "revision", att.Revision, "problem", p.Error())
		}
		r.log.Warn("revision refused; "+r.serving()+" until a new revision",
			"revision", att.Revision, "phase", se.Phase.String(), "problems", len(att.Errors))
	default:
		var re *RetryableError
		if !errors.As(err, &re) {
			err = retryable(PhaseApply, err) // not typed: a bug; retried
		}
		att.Result, att.Errors, att.err = ResultFailed, problems(err), err
		r.log.Warn("reconcile failed; "+r.serving()+"; the run is retried", "revision", att.Revision, "err", err)
	}
	return att
}
