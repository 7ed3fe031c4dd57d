package schema

import "certops/secrets/ref"

// The secret-reference grammar (DESIGN.md 2.4) lives with the providers, in
// package certops/secrets/ref, which imports no store client. These names
// keep schema's API: validation checks a reference's syntax with them, and
// values are resolved by the daemon.

// Reference is a parsed secret reference; see ref.Reference.
type Reference = ref.Reference

// ErrNotReference is returned by ParseReference for a value that is not a
// secret reference at all.
var ErrNotReference = ref.ErrNotReference

// IsReference reports whether a field value is a secret reference rather
// than PEM text.
func IsReference(value string) bool { return ref.Is(value) }

// ParseReference parses a secret reference. It checks syntax only.
func ParseReference(s string) (Reference, error) { return ref.Parse(s) }
