package reconciler

import (
	"slices"
	"time"

	"certops/plan"
	"certops/schema"
)

// Status is a snapshot of the reconciler's state, for the admin API and
// `certops status`. A Status is immutable once published: Status() hands out
// the same pointer to every caller, who must not modify it.
type Status struct {
	// Source is the source followed, credentials redacted.
	Source string `json:"source"`
	// Applied is the revision the gateway serves; nil before the first apply.
	Applied     *Revision `json:"applied,omitempty"`
	LastAttempt *Attempt  `json:"last_attempt,omitempty"`
	// Running is the attempt in progress; nil between attempts.
	Running  *Running       `json:"running,omitempty"`
	Entities int            `json:"entities"`
	Degraded []Degraded     `json:"degraded,omitempty"`
	Expiring []ExpiringCert `json:"expiring,omitempty"`
	// Plan summarises the changes of the last applied plan.
	Plan *plan.Summary `json:"plan,omitempty"`
}

// Revision is an applied revision and when it was applied.
type Revision struct {
	ID   string    `json:"id"`
	Time time.Time `json:"time"`
}

// Running is an attempt in progress: since when, and in which phase.
type Running struct {
	Since time.Time `json:"since"`
	Phase Phase     `json:"phase"`
}

// Result is the outcome of a reconcile attempt.
type Result string

// Results of a reconcile attempt.
const (
	ResultApplied   Result = "applied"   // a new state is served
	ResultUnchanged Result = "unchanged" // nothing to do
	ResultStalled   Result = "stalled"   // the revision is invalid; waiting for a new one
	ResultFailed    Result = "failed"    // retryable (source, secret store, sink); retried with backoff
)

// String returns the result's name, as the status and metrics show it.
func (r Result) String() string { return string(r) }

// Phase is a step of a reconcile.
type Phase string

// Phases of a reconcile, in order.
const (
	PhaseFetch   Phase = "fetch"   // the source is brought up to date
	PhaseVerify  Phase = "verify"  // the revision's signatures are checked (Options.Signatures)
	PhaseLoad    Phase = "load"    // the revision's files are validated
	PhaseResolve Phase = "resolve" // secret references are resolved
	PhasePlan    Phase = "plan"    // the desired state is compared with the running one
	PhaseApply   Phase = "apply"   // the gateway, then the sinks, take the desired state
)

// String returns the phase's name, as the status and metrics show it.
func (p Phase) String() string { return string(p) }

// Attempt is the outcome of one reconcile.
type Attempt struct {
	Revision string    `json:"revision,omitempty"`
	Time     time.Time `json:"time"`
	Result   Result    `json:"result"`
	// Errors are the problems of a stalled or failed attempt, with the
	// file position of those that come from a repository file.
	Errors schema.ErrorList `json:"errors,omitempty"`

	err error // the typed cause: a *StalledError or a *RetryableError
}

// Err returns the error that decided a stalled or failed attempt (a
// [*StalledError] or a [*RetryableError]), or nil when it succeeded.
func (a *Attempt) Err() error {
	if a == nil {
		return nil
	}
	return a.err
}

// Degraded is an entity whose material could not be brought up to date:
// served with what it had (its secret could not be refreshed, or its new
// value was refused), or not served at all when it had nothing good yet.
type Degraded struct {
	Entity string `json:"entity"`
	Reason string `json:"reason"`
	// Served is false for an entity left out of what the gateway serves.
	Served bool `json:"served"`
}

// ExpiringCert is a served certificate that expires within the warning
// window.
type ExpiringCert struct {
	Entity   string    `json:"entity"`
	Chain    int       `json:"chain"`
	Subject  string    `json:"subject"`
	NotAfter time.Time `json:"not_after"`
}

// RunReport describes one reconcile for metrics (Options.Observe).
type RunReport struct {
	Revision string
	Result   Result
	// Phases holds the duration of each phase that ran.
	Phases map[Phase]time.Duration
}

// publish records an attempt in the status, and the certificates of the
// applied state that now expire within the warning window (a certificate
// enters the window without any commit). The attempt is no longer
// running.
func (r *Reconciler) publish(att *Attempt) {
	s := *r.status.Load()
	s.LastAttempt = att
	s.Running = nil
	prev := s.Expiring
	s.Expiring = nil
	if r.applied != nil {
		s.Expiring = expiring(r.applied.infos, r.now().Add(r.opts.WarnWithin), prev)
	}
	r.status.Store(&s)
}

// expiring lists the certificates of infos that expire before limit. It
// returns prev, the list of the last status, when the list is the same
// (as it is after most reconciles), or a prefix of it, so that a status
// published after each reconcile does not copy 10,000 expiring
// certificates each time. prev is never modified.
func expiring(infos *plan.Set, limit time.Time, prev []ExpiringCert) []ExpiringCert {
	var out []ExpiringCert // nil while the list is prev[:n]
	n := 0
	infos.Expiring(limit, func(name string, chain int, subject string, notAfter time.Time) {
		e := ExpiringCert{Entity: name, Chain: chain, Subject: subject, NotAfter: notAfter}
		if out == nil && n < len(prev) && prev[n] == e {
			n++
			return
		}
		if out == nil {
			out = make([]ExpiringCert, n, max(len(prev), n+1))
			copy(out, prev[:n])
		}
		out = append(out, e)
	})
	if out != nil {
		if cap(out)-len(out) > len(out)/8 {
			out = slices.Clone(out) // it may stay for long: without the room append left
		}
		return out
	}
	if n == 0 {
		return nil
	}
	return prev[:n:n]
}

// publishRunning records the phase of the attempt in progress.
func (r *Reconciler) publishRunning(since time.Time, phase Phase) {
	s := *r.status.Load()
	s.Running = &Running{Since: since, Phase: phase}
	r.status.Store(&s)
}

func (r *Reconciler) publishDegraded(degraded []Degraded) {
	s := *r.status.Load()
	s.Degraded = degraded
	r.status.Store(&s)
}

// publishApplied records a newly applied state in the status.
func (r *Reconciler) publishApplied(at time.Time, p *plan.Plan, degraded []Degraded) {
	s := *r.status.Load()
	s.Applied = &Revision{ID: r.applied.revision, Time: at}
	s.Entities = r.applied.infos.Len()
	s.Degraded = degraded
	summary := p.Summary
	s.Plan = &summary
	r.status.Store(&s)
}
