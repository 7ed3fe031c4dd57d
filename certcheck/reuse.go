package certcheck

import (
	"crypto/x509"
	"fmt"
	"slices"
	"strings"
)

// Set runs the checks across entities: a public key (by fingerprint)
// served by two entities is reported on each, naming the others. Within
// one entity, chains sharing a key are not reported. The result does not
// depend on the order of es.
func (c *Checker) Set(es []Entity) []Finding {
	var uses []KeyUse
	for _, e := range es {
		for _, ch := range e.Chains {
			if len(ch.Certs) > 0 {
				uses = append(uses, KeyUse{Entity: e.Name, Field: ch.Field, Fingerprint: PublicKeyFingerprint(ch.Certs[0])})
			}
		}
	}
	return c.Reuse(uses)
}

// KeyUse is one chain's key, known by its public-key fingerprint (hex
// SHA-256 of the SPKI). The fingerprint may come from the key or from the
// chain's leaf: validation checks that the two match, so the leaf's
// SubjectPublicKeyInfo is the public half of a key written as a secret
// reference, and reuse is found without resolving it.
type KeyUse struct {
	Entity      string
	Field       string // the chain's cert field: cert or certs[i]
	Fingerprint string
}

// Reuse is Set for callers that hold fingerprints rather than parsed
// chains. Uses with no fingerprint are left out.
func (c *Checker) Reuse(all []KeyUse) []Finding {
	type use struct {
		entity string
		field  string
	}
	uses := map[string][]use{}
	for _, u := range all {
		if u.Fingerprint == "" {
			continue
		}
		fp := u.Fingerprint
		if l := uses[fp]; len(l) > 0 && l[len(l)-1].entity == u.Entity {
			continue
		}
		uses[fp] = append(uses[fp], use{u.Entity, u.Field})
	}
	var out []Finding
	for fp, l := range uses {
		if len(l) < 2 {
			continue
		}
		// The distinct entities of this key, sorted once: a key shared by
		// n entities costs O(n log n), and each message names at most
		// maxNamed of the others (a fleet-wide shared key would otherwise
		// make n messages of n names each).
		names := make([]string, 0, len(l))
		for _, u := range l {
			names = append(names, u.entity)
		}
		slices.Sort(names)
		names = slices.Compact(names)
		if len(names) < 2 {
			continue
		}
		for _, u := range l {
			r := &report{policy: c.policy, entity: u.entity, field: u.field}
			r.add(KeyReuse, "the leaf's key (public key SHA-256 %s) is also the key of %s: give each entity its own key",
				fp[:min(16, len(fp))], othersText(names, u.entity))
			out = append(out, r.findings...)
		}
	}
	slices.SortFunc(out, func(a, b Finding) int {
		if n := strings.Compare(a.Entity, b.Entity); n != 0 {
			return n
		}
		return strings.Compare(a.Field, b.Field)
	})
	return out
}

// Renewal checks a certificate that replaced old in the same chain of
// entity (what `certops diff` shows as rotated): a new certificate with
// the old public key is a key reused across renewal. It reports nothing
// when the certificate did not change.
func (c *Checker) Renewal(entity, field string, old, renewed *x509.Certificate) []Finding {
	if old == nil || renewed == nil || old.Equal(renewed) {
		return nil
	}
	return c.RenewalFingerprints(entity, field, PublicKeyFingerprint(old), PublicKeyFingerprint(renewed))
}

// RenewalFingerprints is Renewal for callers that hold public-key
// fingerprints (hex SHA-256 of the SPKI) of a certificate that changed.
func (c *Checker) RenewalFingerprints(entity, field, oldKey, newKey string) []Finding {
	if oldKey == "" || oldKey != newKey {
		return nil
	}
	r := &report{policy: c.policy, entity: entity, field: field}
	r.add(KeyReusedOnRenewal, "key reused across renewal: the new certificate has the old public key (SHA-256 %s); generate a new key when renewing",
		oldKey[:min(16, len(oldKey))])
	return r.findings
}

// maxNamed is how many other entities a key-reuse finding names.
const maxNamed = 3

// othersText names the entities of sorted (distinct) other than self: all
// of them up to maxNamed, else the first maxNamed and how many more.
func othersText(sorted []string, self string) string {
	var named []string
	for _, n := range sorted {
		if len(named) == maxNamed {
			break // the rest is counted, not read: a key in n entities costs O(n), not O(n²)
		}
		if n != self {
			named = append(named, n)
		}
	}
	rest := len(sorted) - 1 - len(named)
	text := "entity " + strings.Join(named, ", ")
	if len(named) > 1 {
		text = "entities " + strings.Join(named, ", ")
	}
	if rest > 0 {
		text += fmt.Sprintf(" and %d others", rest)
	}
	return text
}
