package reconciler

import (
	"context"
	"fmt"

	"certops/gateway"
	"certops/plan"
	"certops/schema"
	"certops/source"
)

// ChangeApplier is a gateway that also applies changes entity by entity
// ([gateway.Server.ApplyChanges]): each entity of changed is created or
// replaces the running one of its name, each name in removed is taken
// out, atomically, at a cost in the number of changes rather than of
// entities. The reconciler uses it when an Applier has it.
type ChangeApplier interface {
	ApplyChanges(changed []gateway.Entity, removed []string) error
}

var _ ChangeApplier = (*gateway.Server)(nil)

// Sink receives each revision the reconciler applies, after the gateway
// serves it: a fleet publisher is one. The gateway itself is the first
// sink, reached through [Applier] because it needs the resolved material:
// it is applied atomically and first, and its refusal refuses the
// revision. Sinks ([Options].Sinks) then receive the revision in order.
//
// A Sink's error is retryable: the attempt is failed (and retried with
// backoff) while the gateway keeps serving, and a sink that missed a
// revision receives it again on the next run, even if nothing changed.
// A revision is delivered to a sink once it succeeded; rotated secret
// values (no new revision) are not delivered. Apply is called by one
// reconcile at a time.
type Sink interface {
	Apply(ctx context.Context, rev *AppliedRevision) error
}

// AppliedRevision is a revision as the gateway serves it, without any
// resolved secret: entities as validated, references unresolved. It is
// shared by every sink and must not be modified.
type AppliedRevision struct {
	// Revision is the source's revision id (a commit id for Git).
	Revision string
	// Tree is the revision's file tree, for a sink that forwards files.
	Tree *source.Tree
	// Entities are the validated entities, sorted by name. Literal keys
	// are in them as written: a sink that sends them anywhere must
	// encrypt them (DESIGN.md 9). They are nil for the sinks of this
	// package that read the descriptions only ([Prover], [FleetSource]):
	// listing 10,000 entities took 5 ms of every one-file change.
	Entities []*schema.Entity
	// Infos describe the entities; Plan is what the revision changed in
	// the gateway.
	Infos *plan.Set
	Plan  *plan.Plan
}

// deliver hands the applied revision to every sink that has not received
// it yet, in order, and returns result when all have it; a sink's error is
// retryable. The caller holds sem.
func (r *Reconciler) deliver(ctx context.Context, result Result) (Result, error) {
	a := r.applied
	if a == nil {
		return result, nil
	}
	var infosOnly, rev *AppliedRevision
	for i, s := range r.opts.Sinks {
		if r.delivered[i] == a.revision {
			continue
		}
		if infosOnly == nil {
			infosOnly = &AppliedRevision{Revision: a.revision, Tree: a.tree, Infos: a.infos, Plan: a.plan}
		}
		give := infosOnly
		if readsEntities(s) {
			if rev == nil {
				withEntities := *infosOnly
				rev = &withEntities
				rev.Entities = make([]*schema.Entity, 0, a.infos.Len())
				for i := range a.infos.Len() {
					rev.Entities = append(rev.Entities, a.built[a.infos.Name(i)].ent()) // thawed for the sink
				}
			}
			give = rev
		}
		if err := s.Apply(ctx, give); err != nil {
			return "", retryable(PhaseApply, fmt.Errorf("sink %d: revision %s: %w", i, a.revision, err))
		}
		r.delivered[i] = a.revision
	}
	// Every sink has the revision: its plan (a description of each
	// entity a cold start creates) is not needed any more.
	a.plan = nil
	return result, nil
}

// readsEntities reports whether a sink may read AppliedRevision.Entities:
// any sink but the ones of this package that read the descriptions only
// (the proof of the served state, the fleet node's record).
func readsEntities(s Sink) bool {
	switch s.(type) {
	case *Prover, *FleetSource:
		return false
	}
	return true
}
