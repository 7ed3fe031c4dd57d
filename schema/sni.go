package schema

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"golang.org/x/net/idna"
)

// NormalizeSNI returns the canonical form of a server name as written in
// an entity's snis: one trailing dot removed, internationalised names
// converted to A-labels (RFC 5891), lowercase. It refuses what no
// ClientHello can carry: IP literals (RFC 6066 3), malformed labels, a
// wildcard anywhere but as the whole leftmost label, and a wildcard over a
// single label. "*" alone, the default certificate, is kept.
func NormalizeSNI(s string) (string, error) {
	if s == "*" {
		return s, nil
	}
	name := strings.TrimSuffix(s, ".")
	if name == "" {
		return "", errors.New("empty server name")
	}
	if strings.ContainsFunc(name, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return "", errors.New("server name contains white space or control characters")
	}
	if strings.HasPrefix(name, "[") || isIP(name) {
		return "", errors.New("an IP address is not a server name: SNI carries host names only (RFC 6066 section 3)")
	}
	wildcard := false
	if rest, ok := strings.CutPrefix(name, "*."); ok {
		wildcard, name = true, rest
	}
	if strings.Contains(name, "*") {
		return "", errors.New(`a wildcard is allowed only as the whole leftmost label, as in "*.example.com"`)
	}
	if !isASCII(name) {
		a, err := idna.Lookup.ToASCII(name)
		if err != nil {
			return "", fmt.Errorf("not a valid internationalised domain name (%v); write it in A-label form (xn--...)", err)
		}
		name = a
	}
	name = strings.ToLower(name)
	if len(name) > 253 {
		return "", errors.New("server name is longer than 253 characters")
	}
	labels := strings.Split(name, ".")
	for _, l := range labels {
		if err := checkLabel(l); err != nil {
			return "", err
		}
	}
	if wildcard {
		if len(labels) < 2 {
			return "", errors.New(`a wildcard must stand for one label below a registered name, as in "*.example.com", not "*.com"`)
		}
		name = "*." + name
	}
	return name, nil
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
			return fmt.Errorf("label %q contains %q; host names use letters, digits and hyphens", l, r)
		}
	}
	return nil
}

func isIP(s string) bool {
	_, err := netip.ParseAddr(s)
	return err == nil
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			return false
		}
	}
	return true
}

// deriveName names an ADC item that has no id from its SNIs (DESIGN.md
// 2.3): the sorted, normalised SNIs joined by "_", with "*" spelt
// "wildcard". A name too long for the name pattern is shortened and keeps
// a hash of the whole, so it stays unique.
func deriveName(snis []string) string {
	names := make([]string, 0, len(snis))
	for _, s := range snis {
		if n, err := NormalizeSNI(s); err == nil {
			s = n
		}
		names = append(names, strings.ReplaceAll(strings.ToLower(s), "*", "wildcard"))
	}
	slices.Sort(names)
	name := strings.Join(names, "_")
	if len(name) > 100 {
		sum := sha256.Sum256([]byte(name))
		name = strings.TrimRight(name[:87], "._-") + "-" + hex.EncodeToString(sum[:6])
	}
	return name
}
