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
