package reconciler

import (
	"errors"

	"certops/schema"
)

// A reconcile ends in one of two kinds of error, as in Flux's serror: the
// phase that fails says which, and [Reconciler] decides the outcome from
// the type alone (settle in pipeline.go).

// StalledError refuses a revision: it is invalid (validation problems,
// secret values that are not valid material, a plan that deletes too
// much, a configuration the gateway refuses). The reconciler keeps serving
// the last applied state and waits for a new revision.
//
// A [Sink] or a source may return one too (settle finds it in the chain
// of the retryable error it is wrapped in): a fleet publisher refusing
// literal private keys without a data key, a fleet node refusing a
// manifest. Returning the same *StalledError again for the same revision
// keeps the reconciler from logging it again.
type StalledError struct {
	Phase Phase
	// Err is the cause; a schema.ErrorList when the problems have file
	// positions.
	Err error
	// Recheck asks for the same revision to be tried again on the next
	// trigger, because what made it invalid can change without a commit
	// (resolved secret values).
	Recheck bool
}

func (e *StalledError) Error() string {
	return "revision refused in " + e.Phase.String() + ": " + e.Err.Error()
}
func (e *StalledError) Unwrap() error { return e.Err }

// RetryableError is a failure that may pass by itself: the source or a
// secret store is unreachable, a sink did not take the revision. The
// reconciler keeps serving the last applied state and retries with
// backoff.
type RetryableError struct {
	Phase Phase
	Err   error // the cause; a schema.ErrorList when the problems have positions
}

func (e *RetryableError) Error() string { return e.Phase.String() + " failed: " + e.Err.Error() }
func (e *RetryableError) Unwrap() error { return e.Err }

// stalled and retryable wrap err as the phase's error of that kind.
func stalled(phase Phase, err error) error   { return &StalledError{Phase: phase, Err: err} }
func retryable(phase Phase, err error) error { return &RetryableError{Phase: phase, Err: err} }

// problems lists the problems of err for the status: those of a
// schema.ErrorList in it (with their positions), or err's message.
func problems(err error) schema.ErrorList {
	if err == nil {
		return nil
	}
	var se *StalledError
	var re *RetryableError
	switch {
	case errors.As(err, &se):
		err = se.Err
	case errors.As(err, &re):
		err = re.Err
	}
	var list schema.ErrorList
	if errors.As(err, &list) {
		return list
	}
	return schema.ErrorList{{Msg: err.Error(), Severity: schema.SeverityError}}
}
