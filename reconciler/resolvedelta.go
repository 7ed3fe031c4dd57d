package reconciler

import (
	"cmp"
	"context"
	"slices"
	"strings"

	"certops/schema"
)

// resolveDelta is resolve for a load that changed a few files of the load
// the applied state was built from (see incremental): it builds the
// entities of the changed files and those with secret references (whose
// values may have changed without a commit), and takes every other build
// from the applied state without looking at it. The desired state is then
// the applied one with the delta, which the later phases read alone: a
// one-file change among 10,000 entities builds one entity, and walks,
// looks up and copies none of the others. Its errors, partial applies and
// degraded entities are resolve's.
func (r *Reconciler) resolveDelta(ctx context.Context, rn *run, ld *loadDelta, partial bool) (*desired, error) {
	defer r.phase(rn, PhaseResolve)()
	a := r.applied
	seen := make(map[string]bool, len(ld.entities)+len(ld.gone))
	for _, e := range ld.entities {
		seen[e.Name] = true
	}
	for _, name := range ld.gone {
		seen[name] = true
	}
	entities := slices.Clone(ld.entities)
	refs := make([]schema.EntityRef, len(entities), len(entities)+len(a.refd)) // the delta's are live
	for _, name := range a.refd {
		if !seen[name] {
			b := a.built[name]
			entities, refs = append(entities, b.ent()), append(refs, b.ref)
		}
	}
	// In the full load's order (path, then document), so that problems
	// and degraded entities are listed as a full resolve lists them.
	sortByPosition(entities, refs)
	out, degraded, unresolved, invalid := r.build(ctx, entities, refs)
	failed := len(invalid)+len(unresolved) > 0
	var unserved []*schema.Entity
	if failed && partial {
		out, degraded, unserved = r.lastGood(entities, out, degraded, append(invalid, unresolved...))
	}
	dl, n := r.deltaOf(out, ld.gone)
	if left := failed && (!partial || n == 0); left && len(invalid) > 0 {
		return nil, &StalledError{Phase: PhaseResolve, Err: append(invalid, unresolved...), Recheck: true}
	} else if left {
		return nil, retryable(PhaseResolve, unresolved)
	}
	return &desired{n: n, degraded: degraded, unserved: unserved, partial: failed, delta: dl, infos: r.infos(dl)}, nil
}

// byPosition orders entities as a load lists them: by file, then line.
func byPosition(x, y *schema.Entity) int {
	return cmp.Or(strings.Compare(x.Pos.File, y.Pos.File), cmp.Compare(x.Pos.Line, y.Pos.Line))
}

// sortByPosition sorts entities by position (byPosition, stable), and
// refs, the reference of each, with them.
func sortByPosition(entities []*schema.Entity, refs []schema.EntityRef) {
	type pair struct {
		e   *schema.Entity
		ref schema.EntityRef
	}
	pairs := make([]pair, len(entities))
	for i, e := range entities {
		pairs[i] = pair{e, refs[i]}
	}
	slices.SortStableFunc(pairs, func(x, y pair) int { return byPosition(x.e, y.e) })
	for i, p := range pairs {
		entities[i], refs[i] = p.e, p.ref
	}
}

// incremental reports whether the load ld describes (its delta) can be
// resolved from the applied state alone (resolveDelta): its base is the
// load the applied state was built from, every entity of that load is
// applied (not a partial state, which leaves some out), and the gateway
// did not refuse the last Apply (rebuild).
func (r *Reconciler) incremental(ld *loadDelta) bool {
	a := r.applied
	return ld != nil && a != nil && !r.rebuild && !a.partial && a.load == ld.base
}

// deltaOf is the delta of the builds out, of some of the entities, and the
// names gone, against the applied state, whose other builds are kept; n
// is the number of entities of the desired state.
func (r *Reconciler) deltaOf(out []*built, gone []string) (d *delta, n int) {
	a := r.applied
	d = &delta{replaced: make(map[string]bool)}
	d.add(a.built, out)
	for _, name := range gone {
		if _, ok := a.built[name]; ok {
			d.deleted = append(d.deleted, name)
		}
	}
	slices.Sort(d.deleted)
	return d, len(a.built) + len(d.fresh) - len(d.replaced) - len(d.deleted)
}

// builds returns every build of d: its own list after a full resolve, or
// the applied builds with the delta (in name order, the fresh ones last).
func (r *Reconciler) builds(d *desired) []*built {
	if d.built != nil || d.delta == nil {
		return d.built
	}
	a, dl := r.applied, d.delta
	out := make([]*built, 0, d.n)
	del := 0
	for i := range a.infos.Len() {
		name := a.infos.Name(i)
		if del < len(dl.deleted) && dl.deleted[del] == name {
			del++
			continue
		}
		if !dl.replaced[name] {
			out = append(out, a.built[name])
		}
	}
	return append(out, dl.fresh...)
}

// unchanged reports whether d builds what the applied state has, every
// entity the same.
func (r *Reconciler) unchanged(d *desired) bool {
	if d.built == nil && d.delta != nil {
		return len(d.delta.fresh)+len(d.delta.deleted) == 0
	}
	return sameBuild(r.applied.built, d.built)
}
