package schema

import (
	"errors"
	"fmt"
	"strings"
)

// Reference is a parsed secret reference (DESIGN.md 2.4). Its String form
// is the reference as written; it never holds a resolved value.
type Reference struct {
	// Provider is "env", "vault" or "aws".
	Provider string
	// Path is what follows the provider's prefix: "NAME[/field]" for env,
	// "<path>/<field>" for vault, "<secret-id>[/<json-field>]" for aws.
	// Providers split it further; schema only checks its syntax.
	Path string
	raw  string
}

// String returns the reference as written.
func (r Reference) String() string { return r.raw }

// Secret-reference prefixes; matched case-insensitively.
const (
	envPrefix    = "$env://"
	secretPrefix = "$secret://"
)

// IsReference reports whether a field value is a secret reference rather
// than PEM text.
func IsReference(value string) bool {
	return hasPrefixFold(value, envPrefix) || hasPrefixFold(value, secretPrefix)
}

// ErrNotReference is returned by ParseReference for a value that is not a
// secret reference at all.
var ErrNotReference = errors.New("not a secret reference")

// ParseReference parses a secret reference. It checks syntax only; values
// are resolved by the daemon.
func ParseReference(s string) (Reference, error) {
	var provider, rest string
	switch {
	case hasPrefixFold(s, envPrefix):
		provider, rest = "env", s[len(envPrefix):]
	case hasPrefixFold(s, secretPrefix):
		after := s[len(secretPrefix):]
		name, path, ok := strings.Cut(after, "/")
		if !ok {
			return Reference{}, fmt.Errorf("secret reference %q: want $secret://vault/<path>/<field> or $secret://aws/<secret-id>", s)
		}
		switch strings.ToLower(name) {
		case "vault", "aws":
			provider, rest = strings.ToLower(name), path
		default:
			return Reference{}, fmt.Errorf("secret reference %q: unknown provider %q (want vault or aws)", s, name)
		}
	default:
		return Reference{}, ErrNotReference
	}
	if err := checkReferencePath(provider, rest); err != nil {
		return Reference{}, fmt.Errorf("secret reference %q: %w", s, err)
	}
	return Reference{Provider: provider, Path: rest, raw: s}, nil
}

func checkReferencePath(provider, path string) error {
	if path == "" {
		return errors.New("empty path")
	}
	if strings.ContainsAny(path, " \t\r\n") {
		return errors.New("path contains white space")
	}
	segs := strings.Split(path, "/")
	for _, seg := range segs {
		if seg == "" {
			return errors.New("empty path segment")
		}
	}
	for _, r := range path {
		if r < 0x20 || r == 0x7f {
			return errors.New("path contains control characters")
		}
	}
	switch provider {
	case "env":
		if len(segs) > 2 {
			return errors.New("want $env://NAME or $env://NAME/field")
		}
		if !isEnvName(segs[0]) {
			return fmt.Errorf("%q is not an environment variable name (letters, digits and _, not starting with a digit)", segs[0])
		}
	case "vault":
		if len(segs) < 2 {
			return errors.New("want $secret://vault/<path>/<field>: a path and a field")
		}
		for _, seg := range segs {
			if seg == "." || seg == ".." {
				return errors.New("path segments . and .. are not allowed")
			}
		}
	case "aws":
		// Secret names allow letters, digits and /_+=.@-; ARNs add ':'.
		for _, r := range path {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/_+=.@-:", r)) {
				return fmt.Errorf("%q is not allowed in an AWS secret id (letters, digits and /_+=.@-:)", r)
			}
		}
	}
	return nil
}

func isEnvName(s string) bool {
	for i, r := range s {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || i > 0 && r >= '0' && r <= '9') {
			return false
		}
	}
	return s != ""
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
