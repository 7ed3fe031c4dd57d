package certcheck

import (
	"bytes"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"
)

// issued reports whether parent issued child: the names match and the key
// identifiers do, or, without them, parent's key verifies child's
// signature. Unlike CheckSignatureFrom it accepts
// SHA-1 signatures, so a SHA-1 chain is recognised as a chain (and its
// signatures reported as weak), and it takes an MD5 signature, which Go
// cannot verify at all, on the names and key identifiers alone.
func issued(parent, child *x509.Certificate) bool {
	if !bytes.Equal(child.RawIssuer, parent.RawSubject) {
		return false
	}
	// Matching key identifiers settle it without a signature check (the
	// most expensive step of validation): crypto/x509 verifies every
	// signature of the path afterwards anyway.
	if len(child.AuthorityKeyId) > 0 && len(parent.SubjectKeyId) > 0 {
		return bytes.Equal(child.AuthorityKeyId, parent.SubjectKeyId)
	}
	if child.SignatureAlgorithm == x509.MD5WithRSA {
		return len(child.AuthorityKeyId) == 0 || bytes.Equal(child.AuthorityKeyId, parent.SubjectKeyId)
	}
	return parent.CheckSignature(child.SignatureAlgorithm, child.RawTBSCertificate, child.Signature) == nil
}

// selfSigned reports whether c signed itself (a root).
func selfSigned(c *x509.Certificate) bool { return issued(c, c) }

// chainPath is the structure of a chain as written.
type chainPath struct {
	path       []int // indexes of the certificates from the leaf up, each issued by the next
	duplicates []int // indexes repeating an earlier certificate
	unrelated  []int // indexes on no path from the leaf
}

// walk follows the chain from the leaf (certs[0]) to each certificate's
// issuer among the others, wherever it is listed.
func walk(certs []*x509.Certificate) chainPath {
	var p chainPath
	dup := make([]bool, len(certs))
	for i := 1; i < len(certs); i++ {
		for j := range i {
			if !dup[j] && bytes.Equal(certs[i].Raw, certs[j].Raw) {
				dup[i] = true
				p.duplicates = append(p.duplicates, i)
				break
			}
		}
	}
	used := make([]bool, len(certs))
	used[0] = true
	p.path = []int{0}
	for cur := 0; ; {
		if cur != 0 && selfSigned(certs[cur]) {
			break // a root ends the path
		}
		next := -1
		for j := 1; j < len(certs); j++ {
			if !used[j] && !dup[j] && issued(certs[j], certs[cur]) {
				next = j
				break
			}
		}
		if next < 0 {
			break
		}
		used[next] = true
		p.path = append(p.path, next)
		cur = next
	}
	for j := 1; j < len(certs); j++ {
		if !used[j] && !dup[j] {
			p.unrelated = append(p.unrelated, j)
		}
	}
	return p
}

// trust is where a chain's trust comes from.
type trust int

const (
	trustNone    trust = iota // no root found, or not checked
	trustPublic               // the system (public) roots
	trustPrivate              // private roots (--roots, *.roots.pem)
)

// checkChain runs the structure and trust checks on one chain.
func (c *Checker) checkChain(r *report, certs []*x509.Certificate, now time.Time) trust {
	p := walk(certs)
	for _, i := range p.duplicates {
		r.add(ChainDuplicate, "certificate %d (%s) repeats an earlier certificate of the chain; list each once", i+1, name(certs[i]))
	}
	for _, i := range p.unrelated {
		r.add(ChainUnrelated, "certificate %d (%s, issued by %s) is not on the path from the leaf to its root; remove it",
			i+1, name(certs[i]), issuerName(certs[i]))
	}
	for k, i := range p.path {
		if i != k {
			r.add(ChainOrder, "certificate %d (%s) issued certificate %d (%s) but is listed at position %d: list the leaf first, each certificate followed by its issuer",
				i+1, name(certs[i]), p.path[k-1]+1, name(certs[p.path[k-1]]), i+1)
			break
		}
	}

	// Go refuses to build a path through a SHA-1 or MD5 signature; the
	// weak signature check reports those, and trust is not judged.
	for _, i := range p.path {
		if weakSignature(certs[i]) != "" && !(i != 0 && selfSigned(certs[i])) {
			return trustNone
		}
	}
	inter := x509.NewCertPool()
	for _, i := range p.path[1:] {
		inter.AddCert(certs[i])
	}
	// EKUs are checked on their own (missing_eku), with their role.
	opts := x509.VerifyOptions{Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}
	onPath := make([]*x509.Certificate, len(p.path))
	for k, i := range p.path {
		onPath[k] = certs[i]
	}
	t, errPublic, errPrivate := c.verify(onPath, opts)
	if expired(errPublic) || expired(errPrivate) {
		// Validity is schema's check, reported there; judge the trust of
		// the chain in the middle of the leaf's life instead.
		leaf := certs[0]
		opts.CurrentTime = leaf.NotBefore.Add(leaf.NotAfter.Sub(leaf.NotBefore) / 2)
		t, errPublic, errPrivate = c.verify(onPath, opts)
	}
	if t != trustNone {
		return t
	}
	var unknown x509.UnknownAuthorityError
	if !errors.As(errPrivate, &unknown) {
		if !errors.As(errPublic, &unknown) {
			errPrivate = errPublic // neither pool knows the root either way: say why x509 refused
		}
		if expired(errPrivate) {
			return trustNone // validity is schema's check, reported there
		}
		r.add(ChainInvalid, "the chain does not verify: %v", errPrivate)
		return trustNone
	}
	top := certs[p.path[len(p.path)-1]]
	// An issuer that is neither listed nor trusted is a missing
	// intermediate or an unpinned root, which the chain alone cannot
	// tell apart. Public CAs name their issuer's certificate in the
	// Authority Information Access extension (BR 7.1.2.7.7), so an issuer
	// with a caIssuers URL is an intermediate the chain lacks.
	topSelfSigned := selfSigned(top)
	switch {
	case len(p.path) > 1 && topSelfSigned:
		r.add(UntrustedRoot, "the chain ends at the root %s, which is not a trusted root: pin it with --roots or a *.roots.pem file if it is a private root",
			name(top))
	case topSelfSigned:
		r.add(UntrustedRoot, "the leaf is self-signed and not a trusted root: pin it with --roots or a *.roots.pem file if it is meant to be trusted")
	case len(top.IssuingCertificateURL) > 0:
		what := "the leaf's"
		if top != certs[0] {
			what = fmt.Sprintf("%s's", name(top))
		}
		r.add(MissingIntermediate, "missing intermediate: %s issuer %s is neither in the chain nor a trusted root; append its certificate (from %s) after %s",
			what, issuerName(top), top.IssuingCertificateURL[0], strings.TrimSuffix(what, "'s"))
	case top.IsCA:
		r.add(UntrustedRoot, "the chain ends at %s, issued by %s, which is not a trusted root: pin that root with --roots or a *.roots.pem file, or add the intermediate if %s is one",
			name(top), issuerName(top), issuerName(top))
	default:
		r.add(UntrustedRoot, "the leaf's issuer %s is neither in the chain nor a trusted root: append it after the leaf if it is an intermediate, or pin it with --roots or a *.roots.pem file if it is a private root",
			issuerName(top))
	}
	return trustNone
}

// verify builds a path for the leaf (onPath[0], the rest its
// intermediates in opts) to the public roots, then to the private ones,
// with crypto/x509, which checks signatures, CA flags, path length and
// name constraints. It returns the trust found, or the errors of both.
func (c *Checker) verify(onPath []*x509.Certificate, opts x509.VerifyOptions) (trust, error, error) {
	leaf := onPath[0]
	if c.private != nil && !c.publicCandidate(onPath) {
		// No public root can end a path from these certificates, so the
		// public attempt fails whatever it tries: make the private one
		// first, and the public one only when the private one fails too,
		// for its error. A privately trusted chain then costs one path
		// build (a signature check per certificate), not two.
		opts.Roots = c.private
		_, errPrivate := leaf.Verify(opts)
		if errPrivate == nil {
			return trustPrivate, nil, nil
		}
		opts.Roots = c.public
		_, errPublic := leaf.Verify(opts)
		if errPublic == nil {
			return trustPublic, nil, nil // not expected; the public roots still win
		}
		return trustNone, errPublic, errPrivate
	}
	opts.Roots = c.public
	_, errPublic := leaf.Verify(opts)
	if errPublic == nil {
		return trustPublic, nil, nil
	}
	if c.private == nil {
		return trustNone, errPublic, errPublic
	}
	opts.Roots = c.private
	_, errPrivate := leaf.Verify(opts)
	if errPrivate == nil {
		return trustPrivate, nil, nil
	}
	return trustNone, errPublic, errPrivate
}

// publicCandidate reports whether a public root could end a path built
// from onPath (a leaf and its intermediates): crypto/x509 takes as a
// parent only a root whose subject is a certificate's issuer, and a leaf
// that is itself in the pool as its own chain. It reports true when the
// public roots are not known (the platform verifies them).
func (c *Checker) publicCandidate(onPath []*x509.Certificate) bool {
	if c.publicSubjects == nil {
		return true
	}
	if c.publicSubjects[string(onPath[0].RawSubject)] {
		return true
	}
	for _, cert := range onPath {
		if c.publicSubjects[string(cert.RawIssuer)] {
			return true
		}
	}
	return false
}

// expired reports whether err is crypto/x509's refusal of a certificate
// outside its validity window.
func expired(err error) bool {
	var invalid x509.CertificateInvalidError
	return errors.As(err, &invalid) && invalid.Reason == x509.Expired
}

// Trust is where a chain's trust comes from, for inventories.
type Trust string

// Trust values.
const (
	TrustPublic    Trust = "public"    // a system (publicly trusted) root
	TrustPrivate   Trust = "private"   // a private root (--roots, *.roots.pem)
	TrustUntrusted Trust = "untrusted" // no trusted root, or not verifiable
)

// String returns the trust's name.
func (t Trust) String() string { return string(t) }

// Trust tells which roots certs (a chain as written, leaf first) builds
// to, at the checker's time or, for a certificate outside its validity
// window, in the middle of the leaf's life.
func (c *Checker) Trust(certs []*x509.Certificate) Trust {
	if len(certs) == 0 {
		return TrustUntrusted
	}
	r := &report{policy: Policy{}}
	return c.checkChain(r, certs, c.now()).verdict()
}

// verdict is the Trust of a chain check's result.
func (t trust) verdict() Trust {
	switch t {
	case trustPublic:
		return TrustPublic
	case trustPrivate:
		return TrustPrivate
	}
	return TrustUntrusted
}
