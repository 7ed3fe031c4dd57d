package secrets

import (
	"errors"
	"fmt"
)

// ErrNotFound is wrapped by errors for a reference whose variable, secret or
// field does not exist.
var ErrNotFound = errors.New("not found")

// ReferenceError is the error of resolving one reference. It names the
// reference as written and wraps the cause; it never holds the value.
type ReferenceError struct {
	Ref string
	Err error
}

func (e *ReferenceError) Error() string { return fmt.Sprintf("secret %s: %v", e.Ref, e.Err) }

func (e *ReferenceError) Unwrap() error { return e.Err }

// ErrUnavailable is wrapped by errors for a store that could not be
// reached (refused, reset, timed out) or answered that it cannot serve now
// (sealed, overloaded, rate limiting). A refresh round stops trying a store
// after a few of these in a row.
var ErrUnavailable = errors.New("secret store unavailable")

// unavailableError marks a transport error as ErrUnavailable without
// changing its message.
type unavailableError struct{ err error }

func unavailable(err error) error { return &unavailableError{err: err} }

func (e *unavailableError) Error() string        { return e.err.Error() }
func (e *unavailableError) Unwrap() error        { return e.err }
func (e *unavailableError) Is(target error) bool { return target == ErrUnavailable }
