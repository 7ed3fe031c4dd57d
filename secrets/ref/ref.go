// Package ref is the grammar of secret references (DESIGN.md 2.4):
// $env://NAME[/field], $secret://vault/<path>/<field> and
// $secret://aws/<secret-id>[/<json-field>].
//
// It checks syntax only and imports nothing but the standard library, so
// that package schema can check references without linking any store's
// client. Each provider's grammar is a Scheme registered from its own file
// (env.go, vault.go, aws.go); package secrets registers the matching
// fetcher under the same name. Parse and Is are safe for concurrent use;
// Register is meant for init functions.
package ref

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Reference is a parsed secret reference. Its String form is the reference
// as written; it never holds a resolved value.
type Reference struct {
	// Provider is the name of a registered Scheme: "env", "vault", "aws".
	Provider string
	// Path is what follows the provider's prefix: "NAME[/field]" for env,
	// "<path>/<field>" for vault, "<secret-id>[/<json-field>]" for aws.
	// Providers split it further; this package only checks its syntax.
	Path string
	raw  string
}

// String returns the reference as written.
func (r Reference) String() string { return r.raw }

// The two reference families; prefixes are matched case-insensitively.
const (
	// EnvPrefix starts a reference whose provider is named by the prefix
	// itself ($env://NAME).
	EnvPrefix = "$env://"
	// SecretPrefix starts a reference whose first path segment names the
	// provider ($secret://vault/...).
	SecretPrefix = "$secret://"
)

// Scheme is the grammar of one provider's references.
type Scheme struct {
	// Name is the provider's name, lowercase: the first segment after
	// SecretPrefix, or "env" for EnvPrefix.
	Name string
	// Prefix is EnvPrefix or SecretPrefix.
	Prefix string
	// Usage shows the reference's form in error messages, e.g.
	// "$secret://vault/<path>/<field>".
	Usage string
	// Check reports what is wrong with a path (never empty, no empty
	// segment, no white space or control characters: Parse checks those
	// first). segs is path split at "/".
	Check func(path string, segs []string) error
}

var (
	mu      sync.RWMutex // guards schemes
	schemes = map[string]Scheme{}
)

// Register adds a provider's grammar. It panics if the name is taken or the
// scheme is incomplete: both are programming errors.
func Register(s Scheme) {
	if s.Name == "" || s.Name != strings.ToLower(s.Name) || s.Check == nil || (s.Prefix != EnvPrefix && s.Prefix != SecretPrefix) {
		panic(fmt.Sprintf("ref: incomplete scheme %q", s.Name))
	}
	mu.Lock()
	defer mu.Unlock()
	if _, dup := schemes[s.Name]; dup {
		panic("ref: scheme registered twice: " + s.Name)
	}
	schemes[s.Name] = s
}

// Providers returns the registered provider names, sorted.
func Providers() []string {
	mu.RLock()
	defer mu.RUnlock()
	names := make([]string, 0, len(schemes))
	for n := range schemes {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func lookup(name string) (Scheme, bool) {
	mu.RLock()
	defer mu.RUnlock()
	s, ok := schemes[name]
	return s, ok
}

// Is reports whether a field value is a secret reference rather than PEM
// text.
func Is(value string) bool {
	return hasPrefixFold(value, EnvPrefix) || hasPrefixFold(value, SecretPrefix)
}

// ErrNotReference is returned by Parse for a value that is not a secret
// reference at all.
var ErrNotReference = errors.New("not a secret reference")

// Parse parses a secret reference. It checks syntax only; values are
// resolved by package secrets. Errors quote the reference (a reference is
// not secret) but never a value that is not one: that yields
// ErrNotReference alone.
func Parse(s string) (Reference, error) {
	var sch Scheme
	var rest string
	switch {
	case hasPrefixFold(s, EnvPrefix):
		var ok bool
		if sch, ok = lookup("env"); !ok || sch.Prefix != EnvPrefix {
			return Reference{}, fmt.Errorf("secret reference %q: no provider for %s", s, EnvPrefix)
		}
		rest = s[len(EnvPrefix):]
	case hasPrefixFold(s, SecretPrefix):
		name, path, ok := strings.Cut(s[len(SecretPrefix):], "/")
		if !ok {
			return Reference{}, fmt.Errorf("secret reference %q: want %s", s, strings.Join(usages(), " or "))
		}
		sch, ok = lookup(strings.ToLower(name))
		if !ok || sch.Prefix != SecretPrefix {
			return Reference{}, fmt.Errorf("secret reference %q: unknown provider %q (want %s)", s, name, strings.Join(secretNames(), " or "))
		}
		rest = path
	default:
		return Reference{}, ErrNotReference
	}
	if err := checkPath(sch, rest); err != nil {
		return Reference{}, fmt.Errorf("secret reference %q: %w", s, err)
	}
	return Reference{Provider: sch.Name, Path: rest, raw: s}, nil
}

// checkPath applies the rules every provider shares, then the scheme's own.
func checkPath(sch Scheme, path string) error {
	if path == "" {
		return errors.New("empty path")
	}
	if strings.ContainsAny(path, " \t\r\n") {
		return errors.New("path contains white space")
	}
	segs := strings.Split(path, "/")
	if slices.Contains(segs, "") {
		return errors.New("empty path segment")
	}
	for _, r := range path {
		if r < 0x20 || r == 0x7f {
			return errors.New("path contains control characters")
		}
	}
	return sch.Check(path, segs)
}

// secretNames lists the providers of the $secret:// family for messages,
// in reverse alphabetical order: "vault or aws", as the messages have
// always read.
func secretNames() []string {
	var names []string
	for _, n := range slices.Backward(Providers()) {
		if s, _ := lookup(n); s.Prefix == SecretPrefix {
			names = append(names, n)
		}
	}
	return names
}

func usages() []string {
	var u []string
	for _, n := range secretNames() {
		s, _ := lookup(n)
		u = append(u, s.Usage)
	}
	return u
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}
