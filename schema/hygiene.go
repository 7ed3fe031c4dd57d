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

// chainFact is what the hygiene checks learnt of one chain. It holds no
// pointer: an entity keeps it for as long as its file is unchanged.
type chainFact struct {
	// key is the SHA-256 of the leaf's SubjectPublicKeyInfo: the public
	// half of the chain's key, literal or a reference.
	key   [sha256.Size]byte
	trust trustCode // 0 when the chain was not checked
}

// trustCode is a certcheck.Trust as an index of trusts.
type trustCode uint8

// trusts are the verdicts a trustCode stands for; 0 is none.
var trusts = [...]certcheck.Trust{"", certcheck.TrustPublic, certcheck.TrustPrivate, certcheck.TrustUntrusted}

func codeOf(t certcheck.Trust) trustCode {
	for i, u := range trusts {
		if u == t {
			return trustCode(i)
		}
	}
	return codeOf(certcheck.TrustUntrusted) // not reached: certcheck has no other verdict
}

func (c trustCode) Trust() certcheck.Trust { return trusts[c] }

// Trust is the verdict of the hygiene checks on the roots of chain i
// (0 for cert, then certs[i-1]), under the roots e was validated with, as
// the last check of its material gave it (validation, or Material on the
// resolved material): no chain is verified again. It is "" when the checks
// did not run on the chain (off, or its certificate an unresolved
// reference).
func (e *Entity) Trust(i int) certcheck.Trust {
	if f := e.facts.Load(); f != nil && i >= 0 && i < len(*f) {
		return (*f)[i].trust.Trust()
	}
	return ""
}

// hygieneFindings runs the checker on an entity's parsed chains, and keeps
// their trust verdicts for Trust.
func (e *Entity) hygieneFindings(chains []certcheck.Chain) []finding {
	if e.hygiene() == nil || len(chains) == 0 {
		return nil
	}
	var out []finding
	findings, verdicts := e.hygiene().EntityTrust(certcheck.Entity{Name: e.Name, Client: e.Type == TypeClient, Chains: chains})
	// A validated entity moves a single chain's facts into itself
	// (compact.go).
	facts := make([]chainFact, len(e.Chains))
	for j, ch := range chains {
		if i := chainIndex(ch.Field); i >= 0 && i < len(facts) && len(ch.Certs) > 0 {
			facts[i] = chainFact{trust: codeOf(verdicts[j]), key: sha256.Sum256(ch.Certs[0].RawSubjectPublicKeyInfo)}
		}
	}
	e.facts.Store(&facts)
	for _, f := range findings {
		out = append(out, finding{field: f.Field, warn: f.Severity == certcheck.SeverityWarning, msg: f.Message + " [" + f.Check.String() + "]"})
	}
	return out
}

// checkKeyReuse reports a public key served by two entities (key_reuse),
// at the cert field of each. The key of a chain is known by its leaf's
// public key, which validation matched to a literal key; a chain whose
// key is a secret reference takes part too, by its literal certificate
// (the key's public half). Only a chain whose certificate is a reference
// is left out until the daemon resolves it: the fingerprints are those of
// the entity's last check (validation, or Material on resolved material),
// so an unchanged entity costs no parsing here, and in the daemon a
// resolved certificate takes part from the next load.
func checkKeyReuse(files []*FileResult) ErrorList {
	var checker *certcheck.Checker
	byName := map[string]*Entity{}
	var uses []certcheck.KeyUse
	for _, f := range files {
		for _, e := range f.Entities {
			facts := e.facts.Load()
			if e.hygiene() == nil || facts == nil {
				continue
			}
			if _, dup := byName[e.Name]; dup {
				continue
			}
			checker = e.hygiene()
			byName[e.Name] = e
			for i, c := range *facts {
				if c.trust != 0 {
					uses = append(uses, certcheck.KeyUse{Entity: e.Name, Field: chainField(i), Fingerprint: hex.EncodeToString(c.key[:])})
				}
			}
		}
	}
	if checker == nil {
		return nil
	}
	var errs ErrorList
	for _, f := range checker.Reuse(uses) {
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

// chainIndex is the index of the chain of a cert field (chainField's
// inverse), or -1.
func chainIndex(field string) int {
	if field == "cert" {
		return 0
	}
	var i int
	if _, err := fmt.Sscanf(field, "certs[%d]", &i); err != nil || i < 0 {
		return -1
	}
	return i + 1
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
