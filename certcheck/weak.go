package certcheck

import (
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"fmt"
	"slices"
)

// MinRSABits is the smallest RSA modulus accepted (CA/B Forum BR 6.1.5,
// NIST SP 800-131A).
const MinRSABits = 2048

// weakSignature returns the name of c's signature algorithm when it is
// SHA-1 or MD5 based, else "".
func weakSignature(c *x509.Certificate) string {
	switch c.SignatureAlgorithm {
	case x509.SHA1WithRSA, x509.ECDSAWithSHA1, x509.DSAWithSHA1, x509.MD5WithRSA, x509.MD2WithRSA:
		return c.SignatureAlgorithm.String()
	}
	return ""
}

// checkWeak reports weak keys, curves and signatures in every certificate
// of a chain. A self-signed root's signature is not checked: nothing
// verifies it (its trust comes from the root store).
func (c *Checker) checkWeak(r *report, certs []*x509.Certificate) {
	for i, cert := range certs {
		what := "the leaf"
		if i > 0 {
			what = fmt.Sprintf("certificate %d (%s)", i+1, name(cert))
		}
		switch k := cert.PublicKey.(type) {
		case *rsa.PublicKey:
			if bits := k.N.BitLen(); bits < MinRSABits {
				r.add(WeakKey, "%s has an RSA-%d key; use at least RSA-%d or ECDSA P-256", what, bits, MinRSABits)
			}
		case *ecdsa.PublicKey:
			if curve := k.Curve.Params().Name; !slices.Contains([]string{"P-256", "P-384", "P-521"}, curve) {
				r.add(WeakCurve, "%s has an ECDSA key on %s; use P-256, P-384 or P-521", what, curve)
			}
		}
		if alg := weakSignature(cert); alg != "" && !(i > 0 && selfSigned(cert)) {
			r.add(WeakSignature, "%s is signed with %s, which clients refuse; reissue it with SHA-256", what, alg)
		}
	}
}

// checkEKU reports a leaf without the extended key usage of its role: a
// server entity's leaf needs serverAuth, a client entity's clientAuth
// (CA/B Forum BR 7.1.2.7.10; crypto/tls clients check serverAuth).
func checkEKU(r *report, leaf *x509.Certificate, client bool) {
	want, wantName := x509.ExtKeyUsageServerAuth, "serverAuth"
	role := "a server entity"
	if client {
		want, wantName, role = x509.ExtKeyUsageClientAuth, "clientAuth", "a client entity"
	}
	if slices.Contains(leaf.ExtKeyUsage, want) || slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageAny) {
		return
	}
	if len(leaf.ExtKeyUsage) == 0 && len(leaf.UnknownExtKeyUsage) == 0 {
		r.add(MissingEKU, "the leaf has no extended key usage; %s needs %s", role, wantName)
		return
	}
	r.add(MissingEKU, "the leaf's extended key usage lacks %s, which %s needs", wantName, role)
}
