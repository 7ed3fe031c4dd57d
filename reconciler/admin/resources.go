package admin

import (
	"time"

	"certops/plan"
	"certops/reconciler"
	"certops/schema"
)

// The JSON documents of /api/v1. They are declared here, apart from the
// reconciler's types, so that the names clients see are fixed by this file
// (and documented in the README) and so that nothing reaches a reply that
// was not copied on purpose: there is no field for a key or a resolved
// secret, only references and public-key fingerprints. Each chain of an
// SSL document also gives its issuer and, when the daemon runs the
// hygiene checks, its trust verdict (public, private or untrusted under
// --roots and the repository's *.roots.pem), which `certops inventory
// --live` lists. The SSL document
// of GET /api/v1/ssls is [plan.EntityInfo] itself, the one description of
// an entity that diff and metrics read too; its JSON form is fixed in
// package plan.

// StatusDoc is the answer of GET /api/v1/status.
type StatusDoc struct {
	Source      string          `json:"source"`
	Ready       bool            `json:"ready"`
	Applied     *RevisionDoc    `json:"applied"`           // null before the first apply
	LastAttempt *AttemptDoc     `json:"last_attempt"`      // null before the first run
	Running     *RunningDoc     `json:"running,omitempty"` // the attempt in progress; absent between attempts
	Entities    int             `json:"entities"`
	Degraded    []DegradedDoc   `json:"degraded"`
	Expiring    []ExpiringDoc   `json:"expiring"`
	Plan        *PlanSummaryDoc `json:"plan"` // the last applied plan; null before
}

// RevisionDoc is an applied revision.
type RevisionDoc struct {
	Revision string    `json:"revision"`
	Time     time.Time `json:"time"`
}

// RunningDoc is the attempt in progress: when it started and the phase
// it is in (fetch, load, resolve, plan, apply).
type RunningDoc struct {
	Since time.Time `json:"since"`
	Phase string    `json:"phase"`
}

// AttemptDoc is a reconcile attempt; it is also the answer of
// POST /api/v1/reconcile?wait=1.
type AttemptDoc struct {
	Revision string           `json:"revision"`
	Time     time.Time        `json:"time"`
	Result   string           `json:"result"` // applied, unchanged, stalled or failed
	Errors   schema.ErrorList `json:"errors"` // {"severity", "file", "line", "column", "field", "message"}
	// Error is the run's error when it returned one (wait=1 only).
	Error string `json:"error,omitempty"`
}

// DegradedDoc is an entity that serves stale material.
type DegradedDoc struct {
	Entity string `json:"entity"`
	Reason string `json:"reason"`
}

// ExpiringDoc is a served certificate that expires within the warning
// window.
type ExpiringDoc struct {
	Entity   string    `json:"entity"`
	Chain    int       `json:"chain"`
	Subject  string    `json:"subject"`
	NotAfter time.Time `json:"not_after"`
}

// PlanSummaryDoc counts the changes of a plan.
type PlanSummaryDoc struct {
	Create    int `json:"create"`
	Update    int `json:"update"`
	Delete    int `json:"delete"`
	Unchanged int `json:"unchanged"`
}

func statusDoc(st *reconciler.Status, ready bool) StatusDoc {
	d := StatusDoc{Ready: ready, Degraded: []DegradedDoc{}, Expiring: []ExpiringDoc{}}
	if st == nil {
		return d
	}
	d.Source = st.Source
	d.Entities = st.Entities
	if st.Applied != nil {
		d.Applied = &RevisionDoc{Revision: st.Applied.ID, Time: st.Applied.Time}
	}
	if st.LastAttempt != nil {
		a := attemptDoc(st.LastAttempt)
		d.LastAttempt = &a
	}
	if st.Running != nil {
		d.Running = &RunningDoc{Since: st.Running.Since, Phase: st.Running.Phase.String()}
	}
	for _, g := range st.Degraded {
		d.Degraded = append(d.Degraded, DegradedDoc{Entity: g.Entity, Reason: g.Reason})
	}
	for _, e := range st.Expiring {
		d.Expiring = append(d.Expiring, ExpiringDoc{Entity: e.Entity, Chain: e.Chain, Subject: e.Subject, NotAfter: e.NotAfter})
	}
	if st.Plan != nil {
		d.Plan = &PlanSummaryDoc{Create: st.Plan.Create, Update: st.Plan.Update, Delete: st.Plan.Delete, Unchanged: st.Plan.Unchanged}
	}
	return d
}

func attemptDoc(a *reconciler.Attempt) AttemptDoc {
	// The one problem type, schema.Error, is its own JSON document.
	d := AttemptDoc{Revision: a.Revision, Time: a.Time, Result: a.Result.String(), Errors: append(schema.ErrorList{}, a.Errors...)}
	return d
}

// Status converts the document back into the reconciler's status, for
// the reports of `certops status`; Ready is in the document alone.
func (d StatusDoc) Status() *reconciler.Status {
	st := &reconciler.Status{Source: d.Source, Entities: d.Entities}
	if d.Applied != nil {
		st.Applied = &reconciler.Revision{ID: d.Applied.Revision, Time: d.Applied.Time}
	}
	if a := d.LastAttempt; a != nil {
		st.LastAttempt = &reconciler.Attempt{Revision: a.Revision, Time: a.Time, Result: reconciler.Result(a.Result), Errors: a.Errors}
	}
	if r := d.Running; r != nil {
		st.Running = &reconciler.Running{Since: r.Since, Phase: reconciler.Phase(r.Phase)}
	}
	for _, g := range d.Degraded {
		st.Degraded = append(st.Degraded, reconciler.Degraded{Entity: g.Entity, Reason: g.Reason})
	}
	for _, e := range d.Expiring {
		st.Expiring = append(st.Expiring, reconciler.ExpiringCert{Entity: e.Entity, Chain: e.Chain, Subject: e.Subject, NotAfter: e.NotAfter})
	}
	if p := d.Plan; p != nil {
		st.Plan = &plan.Summary{Create: p.Create, Update: p.Update, Delete: p.Delete, Unchanged: p.Unchanged}
	}
	return st
}
