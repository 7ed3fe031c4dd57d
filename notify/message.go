package notify

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// Event is the kind of a notification.
type Event string

const (
	// EventApplied: a new revision is served.
	EventApplied Event = "applied"
	// EventStalled: a revision is invalid (or its signature is refused) and
	// was not applied; the last good one keeps serving.
	EventStalled Event = "stalled"
	// EventFailed: a retryable error (Git or a secret store unreachable).
	EventFailed Event = "failed"
	// EventDegraded: an entity serves stale material (a secret refresh
	// failed).
	EventDegraded Event = "degraded"
	// EventRecovered: after stalled, failed or degraded, a reconcile
	// succeeded again.
	EventRecovered Event = "recovered"
	// EventExpiring: a served certificate is within the warning window.
	EventExpiring Event = "expiring"
	// EventVerifiedMismatch: a loopback handshake after an apply was
	// served another leaf than the one applied.
	EventVerifiedMismatch Event = "verified-mismatch"
)

// Events lists every event, in the order documentation shows them.
var Events = []Event{EventApplied, EventStalled, EventFailed, EventDegraded, EventRecovered, EventExpiring, EventVerifiedMismatch}

// ParseEvent reads an event name.
func ParseEvent(s string) (Event, error) {
	for _, e := range Events {
		if string(e) == s {
			return e, nil
		}
	}
	return "", fmt.Errorf("unknown event %q (want one of %s)", s, eventList())
}

func eventList() string {
	names := make([]string, len(Events))
	for i, e := range Events {
		names[i] = string(e)
	}
	return strings.Join(names, ", ")
}

func (e Event) String() string { return string(e) }

// problem reports whether the event is bad news (red in chat, a firing
// alert in Alertmanager).
func (e Event) problem() bool {
	switch e {
	case EventStalled, EventFailed, EventDegraded, EventVerifiedMismatch, EventExpiring:
		return true
	}
	return false
}

// MaxProblems is how many problems a message lists; the rest are counted.
const MaxProblems = 5

// Message is one notification. Only Event is required.
type Message struct {
	Event Event `json:"event"`
	// Name identifies the daemon: --commit-status' context, a fleet or
	// node name; "" is "certops".
	Name string `json:"name,omitempty"`
	// Source is the followed origin, credentials redacted.
	Source   string `json:"source,omitempty"`
	Revision string `json:"revision,omitempty"`
	// Summary is the plan summary ("1 to create, 2 to update, 0 to
	// delete"), or what happened in one line.
	Summary  string    `json:"summary,omitempty"`
	Problems []Problem `json:"problems,omitempty"`
	// Entity and Certificate name the certificate of an expiring or
	// verified-mismatch event; Certificate is its SHA-256 fingerprint.
	Entity      string    `json:"entity,omitempty"`
	Certificate string    `json:"certificate,omitempty"`
	NotAfter    time.Time `json:"not_after,omitzero"`
	Time        time.Time `json:"time"`
}

// Problem is one error of a stalled or failed revision.
type Problem struct {
	File    string `json:"file,omitempty"`
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Field   string `json:"field,omitempty"`
	Message string `json:"message"`
}

// String formats the problem as file:line:col: field: message.
func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d", p.Line)
			if p.Column > 0 {
				fmt.Fprintf(&b, ":%d", p.Column)
			}
		}
		b.WriteString(": ")
	}
	if p.Field != "" {
		b.WriteString(p.Field + ": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// pemBlock matches a PEM block or its start: certops' errors never quote
// one, and this makes sure no notification ever does.
var pemBlock = regexp.MustCompile(`(?s)-----BEGIN [A-Z0-9 ]+-----.*?(-----END [A-Z0-9 ]+-----|$)`)

func scrub(s string) string { return pemBlock.ReplaceAllString(s, "[redacted]") }

// sanitized returns m as it may leave the process: name defaulted, time
// set, problems cut to MaxProblems (the count of the rest as a last
// problem), and every text scrubbed of PEM blocks.
func (m Message) sanitized(now time.Time) Message {
	if m.Name == "" {
		m.Name = "certops"
	}
	if m.Time.IsZero() {
		m.Time = now
	}
	m.Summary = scrub(m.Summary)
	ps := m.Problems
	if len(ps) > MaxProblems {
		ps = append(ps[:MaxProblems:MaxProblems], Problem{Message: fmt.Sprintf("and %d more", len(m.Problems)-MaxProblems)})
	}
	m.Problems = make([]Problem, len(ps))
	for i, p := range ps {
		p.Message, p.Field, p.File = scrub(p.Message), scrub(p.Field), scrub(p.File)
		m.Problems[i] = p
	}
	return m
}

// Title is the one-line headline of a message: "certops: stalled at
// 1a2b3c4d5e6f".
func (m Message) Title() string {
	t := m.Name + ": " + string(m.Event)
	if m.Entity != "" {
		t += " " + m.Entity
	}
	if m.Revision != "" {
		t += " at " + shortRev(m.Revision)
	}
	return t
}

// Lines are the body of a message as plain text lines: the summary, the
// expiry, then the problems.
func (m Message) Lines() []string {
	var lines []string
	if m.Summary != "" {
		lines = append(lines, m.Summary)
	}
	if !m.NotAfter.IsZero() {
		lines = append(lines, "expires "+m.NotAfter.UTC().Format(time.RFC3339))
	}
	for _, p := range m.Problems {
		lines = append(lines, p.String())
	}
	return lines
}

func shortRev(r string) string {
	if len(r) > 12 {
		return r[:12]
	}
	return r
}
