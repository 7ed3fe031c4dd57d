package certcheck

import (
	"crypto/x509"
	"slices"
	"strings"
)

// Set runs the checks across entities: a public key (by fingerprint)
// served by two entities is reported on each, naming the others. Within
// one entity, chains sharing a key are not reported. The result does not
// depend on the order of es.
func (c *Checker) Set(es []Entity) []Finding {
	type use struct {
		entity string
		field  string
	}
	uses := map[string][]use{}
	for _, e := range es {
		for _, ch := range e.Chains {
			if len(ch.Certs) == 0 {
				continue
			}
			fp := PublicKeyFingerprint(ch.Certs[0])
			if l := uses[fp]; len(l) > 0 && l[len(l)-1].entity == e.Name {
				continue
			}
			uses[fp] = append(uses[fp], use{e.Name, ch.Field})
		}
	}
	var out []Finding
	for fp, l := range uses {
		if len(l) < 2 {
			continue
		}
		for i, u := range l {
			var others []string
			for j, o := range l {
				if j != i && o.entity != u.entity {
					others = append(others, o.entity)
				}
			}
			if len(others) == 0 {
				continue
			}
			slices.Sort(others)
			others = slices.Compact(others)
			r := &report{policy: c.policy, entity: u.entity, field: u.field}
			r.add(KeyReuse, "the leaf's key (public key SHA-256 %s) is also the key of entity %s: give each entity its own key",
				fp[:16], strings.Join(others, ", "))
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
