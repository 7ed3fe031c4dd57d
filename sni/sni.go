// Package sni holds the one rule for server names that certops configures
// and matches (STYLE.md: one rule, one place): their syntax, their
// canonical form, and what a wildcard covers. The schema checks entity
// files with it and the gateway indexes and looks up server names with it,
// so a name that validates is a name the gateway serves, and one it
// refuses is refused by both.
//
// The package uses the standard library only (the gateway's rule) and
// allocates nothing on the lookup path (Fold, AppendFold, Parent).
// Internationalised names are configured as A-labels ("xn--..."): the
// conversion from U-labels needs IDNA tables and is the schema's.
package sni

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// MaxLen is the longest DNS name, without its trailing dot (RFC 1035
// section 2.3.4). A longer server name cannot match a configured one.
const MaxLen = 253

// Default is the configured name of the default certificate, served when
// no other name matches.
const Default = "*"

// ErrNotASCII is returned, wrapped, for a name with a non-ASCII character:
// it must be written as its IDN A-labels (RFC 5891), which is what clients
// send in the server_name extension (RFC 6066 section 3).
var ErrNotASCII = errors.New("not ASCII: write an internationalised name in A-label form (xn--...)")

// Fold returns name lowercased, without one trailing dot: the canonical
// form under which configured names are indexed and ClientHello names are
// looked up (DESIGN.md 3). It does not check the syntax.
func Fold(name string) string {
	name = strings.TrimSuffix(name, ".")
	for i := 0; i < len(name); i++ {
		if c := name[i]; 'A' <= c && c <= 'Z' {
			return strings.ToLower(name)
		}
	}
	return name
}

// AppendFold appends Fold(name) to dst and returns it; ok is false, and
// nothing is appended, for a name longer than MaxLen. It does not allocate
// when dst has room, which keeps a handshake's lookup allocation-free.
func AppendFold(dst []byte, name string) (b []byte, ok bool) {
	name = strings.TrimSuffix(name, ".")
	if len(name) > MaxLen {
		return dst, false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst, true
}

// Normalize returns the canonical form of a configured server name (Fold)
// after checking it with Check.
func Normalize(name string) (string, error) {
	if name == Default {
		return name, nil
	}
	folded := Fold(name)
	if folded == "" && name != "" {
		return "", errors.New("empty server name")
	}
	if err := Check(folded); err != nil {
		return "", err
	}
	return folded, nil
}

// Check reports why a folded configured name can never match a ClientHello,
// or returns nil. Accepted are host names of letters, digits and hyphens
// (RFC 952, RFC 1123), "*" alone (the default certificate), and "*.parent"
// wildcards standing for one label below a parent of at least two labels
// (RFC 6125 section 6.4.3; "*.com" is refused). IP literals are refused:
// SNI carries host names only (RFC 6066 section 3).
func Check(name string) error {
	switch {
	case name == Default:
		return nil
	case name == "":
		return errors.New("empty server name")
	case strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		return errors.New("server name contains white space or control characters")
	case strings.HasPrefix(name, "[") || isIP(name):
		return errors.New("an IP address is not a server name: SNI carries host names only (RFC 6066 section 3)")
	}
	host, wildcard := strings.CutPrefix(name, "*.")
	if strings.Contains(host, "*") {
		return errors.New(`a wildcard is allowed only as the whole leftmost label, as in "*.example.com"`)
	}
	for i := 0; i < len(host); i++ {
		if host[i] >= 0x80 {
			return fmt.Errorf("server name %w", ErrNotASCII)
		}
	}
	if len(host) > MaxLen {
		return fmt.Errorf("server name is longer than %d characters", MaxLen)
	}
	labels := 0
	for l := range strings.SplitSeq(host, ".") {
		if err := checkLabel(l); err != nil {
			return err
		}
		labels++
	}
	if wildcard && labels < 2 {
		return errors.New(`a wildcard must stand for one label below a registered name, as in "*.example.com", not "*.com"`)
	}
	return nil
}

func checkLabel(l string) error {
	switch {
	case l == "":
		return errors.New("empty label (two dots in a row, or a leading dot)")
	case len(l) > 63:
		return fmt.Errorf("label %q is longer than 63 characters", l[:20]+"...")
	case l[0] == '-' || l[len(l)-1] == '-':
		return fmt.Errorf("label %q starts or ends with a hyphen", l)
	}
	for _, r := range l {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			if r == '_' {
				return fmt.Errorf("label %q contains an underscore, which host names cannot (RFC 952, RFC 1123)", l)
			}
			if r >= 'A' && r <= 'Z' {
				return fmt.Errorf("label %q has upper-case letters: fold the name first", l)
			}
			return fmt.Errorf("label %q contains %q; host names use letters, digits and hyphens", l, r)
		}
	}
	return nil
}

func isIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

// Parent returns the part of a folded name after its first label: the key
// under which the wildcard "*.parent" that covers name is indexed. It
// returns an empty result when name has no parent ("example" or ".a").
// It does not allocate.
func Parent[S ~string | ~[]byte](name S) S {
	for i := 0; i < len(name); i++ {
		if name[i] == '.' {
			if i == 0 || i == len(name)-1 {
				return name[:0]
			}
			return name[i+1:]
		}
	}
	return name[:0]
}

// Covers reports whether the configured or certificate name pattern covers
// the server name name, both folded: equal names, or a pattern "*.parent"
// and a name of one more label below parent (RFC 6125 section 6.4.3:
// "*.example.com" covers "a.example.com", not "example.com" nor
// "a.b.example.com"). A wildcard name is covered only by the same pattern.
func Covers(pattern, name string) bool {
	if pattern == name {
		return true
	}
	parent, ok := strings.CutPrefix(pattern, "*.")
	if !ok || strings.HasPrefix(name, "*") {
		return false
	}
	p := Parent(name)
	return p != "" && p == parent
}
