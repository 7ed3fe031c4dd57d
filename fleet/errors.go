package fleet

import (
	"errors"
	"fmt"
)

// Reason classifies why a node refused what it read on the bus. It is the
// label of the refusal metric.
type Reason string

// Reasons for a refusal.
const (
	ReasonUntrusted Reason = "untrusted" // no trusted key signed the root
	ReasonDigest    Reason = "digest"    // a page or blob does not match its digest
	ReasonReplay    Reason = "replay"    // the sequence is not above the applied one
	ReasonMalformed Reason = "malformed" // the root, a page or a blob does not parse
	ReasonSealed    Reason = "sealed"    // a sealed key cannot be opened (no or wrong data key)
	ReasonFleet     Reason = "fleet"     // the root names another fleet
)

// Reasons returns every Reason, for a metric that starts each at zero.
func Reasons() []Reason {
	return []Reason{ReasonUntrusted, ReasonDigest, ReasonReplay, ReasonMalformed, ReasonSealed, ReasonFleet}
}

// String returns the reason's metric label.
func (r Reason) String() string { return string(r) }

// RefusalError is what a node returns for bus content it will not apply.
// The running state keeps serving; the caller logs and counts it.
type RefusalError struct {
	Reason   Reason
	Sequence uint64 // the refused root's sequence, when known
	Revision string // the refused root's Git revision, when known
	Err      error
}

func (e *RefusalError) Error() string {
	s := "refused"
	if e.Sequence != 0 {
		s += fmt.Sprintf(" manifest %d", e.Sequence)
	}
	if e.Revision != "" {
		s += " (revision " + e.Revision + ")"
	}
	return s + ": " + e.Err.Error()
}

func (e *RefusalError) Unwrap() error { return e.Err }

// refuse returns a RefusalError of reason r.
func refuse(r Reason, format string, args ...any) *RefusalError {
	return &RefusalError{Reason: r, Err: fmt.Errorf(format, args...)}
}

// Refusal reports whether err is (or wraps) a RefusalError, and its reason.
func Refusal(err error) (Reason, bool) {
	var re *RefusalError
	if errors.As(err, &re) {
		return re.Reason, true
	}
	return "", false
}

// ErrLiteralKey is returned by [Fleet.Publish] for a revision with a
// literal private key when the publisher has no data key: it would travel
// in the clear. The revision is stalled, like an invalid one.
var ErrLiteralKey = errors.New("a literal private key cannot be published without a data key (--data-key-file)")

// ErrNotLeader is returned by [Fleet.Publish] when the election says
// another publisher leads.
var ErrNotLeader = errors.New("not the leader publisher")

// ErrNoHead is returned when the fleet has no published manifest yet.
var ErrNoHead = errors.New("nothing published to the fleet yet")
