package schema

import (
	"certops/sni"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"golang.org/x/net/idna"
)

// NormalizeSNI returns the canonical form of a server name as written in
// an entity's snis: internationalised names converted to A-labels (RFC
// 5891), then the rule of package sni, which the gateway applies too: one
// trailing dot removed, lowercase, no IP literals (RFC 6066 3), no
// malformed labels, a wildcard only as the whole leftmost label of a name
// of at least two more labels. "*" alone, the default certificate, is kept.
func NormalizeSNI(s string) (string, error) {
	n, err := sni.Normalize(s)
	if err == nil {
		return n, checkALabels(n)
	}
	if !errors.Is(err, sni.ErrNotASCII) {
		return n, err
	}
	host, wildcard := strings.CutPrefix(strings.TrimSuffix(s, "."), "*.")
	a, err := idna.Lookup.ToASCII(host)
	if err != nil {
		return "", fmt.Errorf("not a valid internationalised domain name (%v); write it in A-label form (xn--...)", err)
	}
	if wildcard {
		a = "*." + a
	}
	return sni.Normalize(a)
}

// checkALabels refuses a label of name that starts like an A-label
// ("xn--") but is not the punycode of any Unicode label: no client sends
// such a name (RFC 5891 4.4). Labels that decode are kept as written,
// whatever IDNA's rules on their characters: a client may send them.
func checkALabels(name string) error {
	for label := range strings.SplitSeq(name, ".") {
		if !strings.HasPrefix(label, "xn--") {
			continue
		}
		if u, err := idna.Punycode.ToUnicode(label); err != nil || u == "" {
			return fmt.Errorf("label %q is not an A-label: xn-- must be followed by the punycode of a Unicode label", label)
		}
	}
	return nil
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
