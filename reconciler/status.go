package reconciler

import (
	"time"

	"certops/plan"
	"certops/schema"
)

// Status is a snapshot of the reconciler's state, for the admin API and
// `certops status`. A Status is immutable once published: Status() hands out
// the same pointer to every caller, who must not modify it.
type Status struct {
	// Source is the origin followed, credentials redacted.
	Source string `json:"source"`
	// Applied is the revision the gateway serves; nil before the first apply.
	Applied     *Revision      `json:"applied,omitempty"`
	LastAttempt *Attempt       `json:"last_attempt,omitempty"`
	Entities    int            `json:"entities"`
	Degraded    []Degraded     `json:"degraded,omitempty"`
	Expiring    []ExpiringCert `json:"expiring,omitempty"`
	// Plan summarises the changes of the last applied plan.
	Plan *plan.Summary `json:"plan,omitempty"`
}

// Revision is an applied revision and when it was applied.
type Revision struct {
	ID   string    `json:"id"`
	Time time.Time `json:"time"`
}

// Results of a reconcile attempt.
const (
	ResultApplied   = "applied"   // a new state is served
	ResultUnchanged = "unchanged" // nothing to do
	ResultStalled   = "stalled"   // the revision is invalid; waiting for a new one
	ResultFailed    = "failed"    // retryable (source or secret store); retried with backoff
)

// Attempt is the outcome of one reconcile.
type Attempt struct {
	Revision string    `json:"revision,omitempty"`
	Time     time.Time `json:"time"`
	// Result is one of ResultApplied, ResultUnchanged, ResultStalled and
	// ResultFailed.
	Result string    `json:"result"`
	Errors []Problem `json:"errors,omitempty"`
}

// Err returns the attempt's problems as one error, or nil when it
// succeeded.
func (a *Attempt) Err() error {
	if a == nil || (a.Result != ResultStalled && a.Result != ResultFailed) {
		return nil
	}
	return &AttemptError{Attempt: a}
}

// AttemptError is a stalled or failed attempt as an error.
type AttemptError struct{ Attempt *Attempt }

func (e *AttemptError) Error() string {
	msg := "reconcile " + e.Attempt.Result
	for _, p := range e.Attempt.Errors {
		msg += "\n" + p.String()
	}
	return msg
}

// Problem is one error or warning of an attempt; File and Line are set
// when it comes from a repository file.
type Problem struct {
	File     string `json:"file,omitempty"`
	Line     int    `json:"line,omitempty"`
	Column   int    `json:"column,omitempty"`
	Field    string `json:"field,omitempty"`
	Message  string `json:"message"`
	Severity string `json:"severity"`
}

// String formats the problem as file:line:col: field: message.
func (p Problem) String() string {
	e := schema.Error{Pos: schema.Pos{File: p.File, Line: p.Line, Col: p.Column}, Field: p.Field, Msg: p.Message}
	if p.File == "" {
		if p.Field != "" {
			return p.Field + ": " + p.Message
		}
		return p.Message
	}
	return e.Error()
}

// Degraded is an entity served with material that may be out of date: its
// secret could not be refreshed.
type Degraded struct {
	Entity string `json:"entity"`
	Reason string `json:"reason"`
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
	Result   string
	// Phases holds the duration of each phase that ran: fetch, load,
	// resolve, plan, apply.
	Phases map[string]time.Duration
	Err    error
}

func problemsOf(list schema.ErrorList) []Problem {
	out := make([]Problem, 0, len(list))
	for _, e := range list {
		out = append(out, Problem{File: e.Pos.File, Line: e.Pos.Line, Column: e.Pos.Col, Field: e.Field, Message: e.Msg, Severity: e.Severity.String()})
	}
	return out
}

func problemOf(err error) Problem {
	return Problem{Message: err.Error(), Severity: "error"}
}
