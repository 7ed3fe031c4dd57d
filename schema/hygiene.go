package schema

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"

	"certops/certcheck"
)

// This file runs the certificate hygiene checks of package certcheck
// (chain, weak material, extended key usage, lifetime, zlint, key reuse)
// as part of validation and of Material, when Options.Hygiene asks for
// them. Their severities come from #Checks, which the built-in schema
// defines and a repository's policy tunes; private roots come from the
// options and from the repository's *.roots.pem files.

// Hygiene turns on the certificate hygiene checks.
type Hygiene struct {
	// Roots are private roots given by the operator (--roots); the
	// repository's *.roots.pem files add theirs.
	Roots []*x509.Certificate
	// PublicRoots are the publicly trusted roots; nil is the system's.
	PublicRoots *x509.CertPool
}

// builtinSource is the built-in schema: #SSL (schemas/ssl.cue) and
// #Checks, whose fields are certcheck's checks, so the two never drift.
var builtinSource = sync.OnceValue(func() []byte {
	return slices.Concat(sslSchema, []byte("\n"), certcheck.CUEDefinition())
})

// splitPinned separates the pinned roots files (*.roots.pem) from the CUE
// policy files.
func splitPinned(policy []PolicyFile) (cue, pinned []PolicyFile) {
	for _, p := range policy {
		if certcheck.IsPinned(p.Path) {
			pinned = append(pinned, p)
		} else {
			cue = append(cue, p)
		}
	}
	return cue, pinned
}

// newChecker builds the checker of a validator from the options, the
// repository's pinned roots and #Checks. It returns a nil checker when the
// options do not ask for hygiene, and a digest of its inputs for the
// validator's policy hash.
func newChecker(h *Hygiene, pinned []PolicyFile, checks map[string]string, opts Options) (*certcheck.Checker, string, ErrorList) {
	if h == nil {
		return nil, "", nil
	}
	var errs ErrorList
	sum := sha256.New()
	roots := slices.Clone(h.Roots)
	for _, r := range h.Roots {
		sum.Write(r.Raw)
	}
	for _, p := range pinned {
		fmt.Fprintf(sum, "\x00%s\x00", p.Path)
		sum.Write(p.Src)
		certs, err := certcheck.ParseRoots(p.Src)
		if err != nil {
			errs.add(Pos{File: p.Path, Line: 1, Col: 1}, "", "pinned roots: %v", err)
			continue
		}
		roots = append(roots, certs...)
	}
	policy, err := certcheck.ParsePolicy(checks)
	if err != nil {
		errs.add(Pos{}, "", "%v", err) // the schema refuses both first; kept for safety
	}
	fmt.Fprintf(sum, "\x00%v\x00%p", checks, h.PublicRoots)
	c := certcheck.New(certcheck.Options{Public: h.PublicRoots, Private: roots, Policy: policy, Now: opts.Now})
	return c, hex.EncodeToString(sum.Sum(nil)), errs
}

// hygieneFindings runs the checker on an entity's parsed chains.
func (e *Entity) hygieneFindings(chains []certcheck.Chain) []finding {
	if e.hygiene == nil || len(chains) == 0 {
		return nil
	}
	var out []finding
	for _, f := range e.hygiene.Entity(certcheck.Entity{Name: e.Name, Client: e.Type == TypeClient, Chains: chains}) {
		out = append(out, finding{field: f.Field, warn: f.Severity == certcheck.SeverityWarning, msg: f.Message + " [" + f.Check.String() + "]"})
	}
	return out
}

// checkKeyReuse reports a public key served by two entities (key_reuse),
// at the cert field of each. Only entities whose material was parsed
// during validation (no secret references) take part.
func checkKeyReuse(files []*FileResult) ErrorList {
	var checker *certcheck.Checker
	byName := map[string]*Entity{}
	var es []certcheck.Entity
	for _, f := range files {
		for _, e := range f.Entities {
			m := e.material.Load()
			if e.hygiene == nil || m == nil {
				continue
			}
			checker = e.hygiene
			ce := certcheck.Entity{Name: e.Name, Client: e.Type == TypeClient}
			for i, ch := range m.Chains {
				if ch.Leaf != nil {
					ce.Chains = append(ce.Chains, certcheck.Chain{Field: chainField(i), Certs: []*x509.Certificate{ch.Leaf}})
				}
			}
			if _, dup := byName[e.Name]; !dup {
				byName[e.Name] = e
				es = append(es, ce)
			}
		}
	}
	if checker == nil {
		return nil
	}
	var errs ErrorList
	for _, f := range checker.Set(es) {
		e := byName[f.Entity]
		pos, shown := e.where(f.Field)
		sev := SeverityError
		if f.Severity == certcheck.SeverityWarning {
			sev = SeverityWarning
		}
		errs = append(errs, &Error{Pos: pos, Field: scrubField(shown), Severity: sev, Msg: scrub(f.Message + " [" + f.Check.String() + "]")})
	}
	return errs
}

// chainField names the cert field of chain i: cert, then certs[i-1].
func chainField(i int) string {
	if i == 0 {
		return "cert"
	}
	return fmt.Sprintf("certs[%d]", i-1)
}

// Checks returns the severities of the hygiene checks under the
// validator's policy (#Checks); defaults where the policy did not compile.
func (v *Validator) Checks() certcheck.Policy {
	p, err := certcheck.ParsePolicy(v.schemas[0].checks)
	if err != nil {
		return nil
	}
	return p
}
