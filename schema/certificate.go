package schema

import (
	"certops/sni"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"certops/certcheck"
)

// This file holds the checks of DESIGN.md 2.1 that need cryptography. Their
// messages describe PEM structure and certificate metadata only: never the
// bytes of a value, which may be a private key.

// finding is one problem found in an entity's material, relative to a
// native field path such as "cert", "keys[0]" or "snis[2]".
type finding struct {
	field string
	msg   string
	warn  bool
}

// parseChain parses a PEM certificate chain, leaf first.
func parseChain(b []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for n := 1; ; n++ {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			if strings.Contains(block.Type, "PRIVATE KEY") {
				return nil, fmt.Errorf("PEM block %d is a private key, not a certificate: keys go in key/keys", n)
			}
			return nil, fmt.Errorf("PEM block %d is a %q block, want CERTIFICATE", n, block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			if alg := certificateAlgorithm(block.Bytes); alg != "" && !supportedAlgorithm(alg) {
				return nil, unsupportedKey(fmt.Sprintf("certificate %d", n), alg)
			}
			return nil, fmt.Errorf("certificate %d does not parse: %w", n, err)
		}
		certs = append(certs, c)
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate found (want a CERTIFICATE block)")
	}
	if strings.TrimSpace(string(b)) != "" {
		return nil, errors.New("text after the last PEM block is not PEM")
	}
	return certs, nil
}

// ParseKey parses a PEM private key: PKCS#8, PKCS#1 (RSA) or SEC 1 (EC),
// one key, unencrypted, of a supported algorithm. Its errors name no key
// material. package plan reads literal keys with it.
func ParseKey(b []byte) (crypto.Signer, error) {
	var key crypto.Signer
	for n := 1; ; n++ {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if _, encrypted := block.Headers["Proc-Type"]; encrypted || block.Type == "ENCRYPTED PRIVATE KEY" {
			return nil, errors.New("the private key is encrypted; certops needs it unencrypted (keep it in a secret store and use a reference)")
		}
		var (
			k   any
			err error
		)
		switch block.Type {
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(block.Bytes)
		case "EC PARAMETERS":
			continue // written by `openssl ecparam -genkey` before the key
		case "CERTIFICATE":
			return nil, fmt.Errorf("PEM block %d is a certificate, not a private key: certificates go in cert/certs", n)
		default:
			return nil, fmt.Errorf("PEM block %d is a %q block, want PRIVATE KEY", n, block.Type)
		}
		if err != nil {
			if alg := keyAlgorithm(block.Type, block.Bytes); alg != "" && !supportedAlgorithm(alg) {
				return nil, unsupportedKey("the private key", alg)
			}
			// Say which form failed, not why: asn1's details are noise.
			return nil, fmt.Errorf("the %s block does not parse as %s", block.Type, keyForm[block.Type])
		}
		if key != nil {
			return nil, errors.New("more than one private key; one key per chain")
		}
		s, ok := k.(crypto.Signer)
		switch s.(type) {
		case *rsa.PrivateKey, *ecdsa.PrivateKey, ed25519.PrivateKey:
		default:
			ok = false
		}
		if !ok {
			alg := keyAlgorithm(block.Type, block.Bytes)
			if alg == "" {
				alg = fmt.Sprintf("a %T", k)
			}
			return nil, unsupportedKey("the private key", alg)
		}
		key = s
	}
	if key == nil {
		return nil, errors.New("no PEM private key found (want a PRIVATE KEY block)")
	}
	if strings.TrimSpace(string(b)) != "" {
		return nil, errors.New("text after the last PEM block is not PEM")
	}
	return key, nil
}

var keyForm = map[string]string{
	"PRIVATE KEY":     "PKCS #8",
	"RSA PRIVATE KEY": "a PKCS #1 RSA key",
	"EC PRIVATE KEY":  "a SEC 1 EC key",
}

// keyMatches reports whether key is the private key of cert.
func keyMatches(cert *x509.Certificate, key crypto.Signer) error {
	pub, ok := cert.PublicKey.(interface{ Equal(crypto.PublicKey) bool })
	if !ok {
		return fmt.Errorf("(unsupported public key type %T)", cert.PublicKey)
	}
	if !pub.Equal(key.Public()) {
		if k, c := KeyType(key.Public()), KeyType(cert.PublicKey); k != c {
			return fmt.Errorf("(the key is %s, the certificate's key is %s)", k, c)
		}
		return fmt.Errorf("(both are %s, but different keys)", KeyType(cert.PublicKey))
	}
	return nil
}

// KeyType names the type of a public key as certops spells it everywhere
// (messages, the admin API's key_type, diff): "RSA 2048", "ECDSA P-256",
// "Ed25519"; "unknown" for any other.
func KeyType(pub crypto.PublicKey) string {
	switch k := pub.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return "unknown"
}

// validity checks the validity windows of a chain's certificates.
func validity(field string, certs []*x509.Certificate, now time.Time, warnWithin time.Duration) []finding {
	var out []finding
	for i, c := range certs {
		what := "the certificate"
		if i > 0 {
			what = fmt.Sprintf("chain certificate %d (%s)", i+1, subject(c))
		}
		switch {
		case now.After(c.NotAfter):
			out = append(out, finding{field: field, msg: fmt.Sprintf("%s expired at %s", what, stamp(c.NotAfter))})
		case now.Before(c.NotBefore):
			out = append(out, finding{field: field, msg: fmt.Sprintf("%s is not valid before %s", what, stamp(c.NotBefore))})
		case warnWithin > 0 && c.NotAfter.Sub(now) < warnWithin:
			out = append(out, finding{field: field, warn: true, msg: fmt.Sprintf("%s expires at %s, in %s (within the warning window of %s)",
				what, stamp(c.NotAfter), approx(c.NotAfter.Sub(now)), approx(warnWithin))})
		}
	}
	return out
}

// covers reports whether cert's DNS SANs cover sni by the rule of package
// sni (RFC 6125 6.4: exact match, or a "*" that is the whole leftmost label
// matching exactly one label). A wildcard SNI is covered only by the same
// wildcard. The common name is not consulted, as browsers and Go do not.
func covers(cert *x509.Certificate, name string) bool {
	for _, san := range cert.DNSNames {
		if sni.Covers(sni.Fold(san), name) {
			return true
		}
	}
	return false
}

// caFirst decides about a first certificate marked as a CA (basicConstraints
// CA:TRUE). It is a leaf that was issued carelessly, as `openssl req -x509`
// does by default, when it is a single self-signed certificate, or when its
// key matches and its names cover every SNI while the next certificate is
// not its issuee: that is a warning. Otherwise it is a real CA put first,
// an error.
func caFirst(field string, certs []*x509.Certificate, keyMatched bool, snis []string) finding {
	first := certs[0]
	selfSigned := len(certs) == 1 && first.CheckSignatureFrom(first) == nil
	issuesNext := len(certs) > 1 && certs[1].CheckSignatureFrom(first) == nil
	coversAll := true
	for _, name := range snis {
		if name != sni.Default && !covers(first, name) {
			coversAll = false
		}
	}
	if selfSigned || keyMatched && coversAll && !issuesNext {
		return finding{field: field, warn: true, msg: fmt.Sprintf("the leaf is marked as a CA (basicConstraints CA:TRUE, as `openssl req -x509` makes it); "+
			"it is served as the leaf, but strict clients may refuse it: reissue it with CA:FALSE (%s)", subject(first))}
	}
	return finding{field: field, msg: fmt.Sprintf("the first certificate (%s) is a CA; put the leaf first, then its intermediates", subject(first))}
}

// parseCAs parses a PEM bundle of CA certificates for client.ca.
func parseCAs(b []byte, now time.Time) (*x509.CertPool, []string) {
	var problems []string
	pool := x509.NewCertPool()
	n := 0
	for i := 1; ; i++ {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			if strings.Contains(block.Type, "PRIVATE KEY") {
				problems = append(problems, fmt.Sprintf("PEM block %d is a private key; client.ca holds CA certificates only", i))
			} else {
				problems = append(problems, fmt.Sprintf("PEM block %d is a %q block, want CERTIFICATE", i, block.Type))
			}
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			problems = append(problems, fmt.Sprintf("certificate %d does not parse: %v", i, err))
			continue
		}
		n++
		// An X.509 v1 certificate has no extensions, so no basic
		// constraints: Go and OpenSSL accept it as a trust anchor, and the
		// mTLS CAs of the APISIX and ADC repositories are v1. A v3
		// certificate must say CA:TRUE.
		if c.Version >= 3 && (!c.BasicConstraintsValid || !c.IsCA) {
			problems = append(problems, fmt.Sprintf("certificate %d (%s) is not a CA certificate (basicConstraints CA:TRUE is missing)", i, subject(c)))
			continue
		}
		if now.After(c.NotAfter) {
			problems = append(problems, fmt.Sprintf("CA certificate %d (%s) expired at %s", i, subject(c), stamp(c.NotAfter)))
		}
		pool.AddCert(c)
	}
	if n == 0 && len(problems) == 0 {
		problems = append(problems, "no PEM certificate found (want one or more CA certificates)")
	}
	if len(problems) > 0 {
		return nil, problems
	}
	return pool, nil
}

// checkMaterial runs the checks of DESIGN.md 2.1 on e's material. With
// resolve false (validation), fields holding secret references, and the
// fields in bad, are skipped and the material is returned only when the
// entity has none; with resolve true (Material), every field goes through
// values first.
func (e *Entity) checkMaterial(values Values, resolve bool, bad map[string]bool, now time.Time, warnWithin time.Duration) (*Material, []finding, error) {
	var out []finding
	m := &Material{}
	complete := true
	var parsed []certcheck.Chain // for the hygiene checks
	get := func(field, v string) ([]byte, bool, error) {
		// A field already refused (a malformed reference) is skipped;
		// the others are still checked, so one review finds everything.
		if v == "" || bad[field] || IsReference(v) && !resolve {
			complete = false
			return nil, false, nil
		}
		b, err := values(v)
		if err != nil {
			return nil, false, fmt.Errorf("entity %s: %s: %w", e.Name, describe(field, v), err)
		}
		return b, true, nil
	}
	for i, ch := range e.Chains {
		certField, keyField := "cert", "key"
		if i > 0 {
			certField, keyField = fmt.Sprintf("certs[%d]", i-1), fmt.Sprintf("keys[%d]", i-1)
		}
		certPEM, haveCert, err := get(certField, ch.Cert)
		if err != nil {
			return nil, nil, err
		}
		keyPEM, haveKey, err := get(keyField, ch.Key)
		if err != nil {
			return nil, nil, err
		}
		var certs []*x509.Certificate
		if haveCert {
			certs, err = parseChain(certPEM)
			if err != nil {
				out = append(out, finding{field: certField, msg: err.Error()})
				complete = false
			}
		}
		var key crypto.Signer
		if haveKey {
			key, err = ParseKey(keyPEM)
			if err != nil {
				out = append(out, finding{field: keyField, msg: err.Error()})
				complete = false
			}
		}
		if certs == nil {
			continue
		}
		keyMatched := false
		parsed = append(parsed, certcheck.Chain{Field: certField, Certs: certs})
		if key != nil {
			if err := keyMatches(certs[0], key); err != nil {
				out = append(out, finding{field: keyField, msg: "the key does not match the certificate in " + e.written(certField) + " " + err.Error()})
				complete = false
			} else {
				keyMatched = true
			}
		}
		if certs[0].IsCA {
			out = append(out, caFirst(certField, certs, keyMatched, e.SNIs))
		}
		out = append(out, validity(certField, certs, now, warnWithin)...)
		// With the hygiene checks on, chain_order and chain_unrelated say
		// this precisely (and as errors by default).
		for j := 1; j < len(certs) && e.hygiene() == nil; j++ {
			if certs[j-1].CheckSignatureFrom(certs[j]) != nil {
				out = append(out, finding{field: certField, warn: true, msg: fmt.Sprintf(
					"chain certificate %d (%s) did not issue certificate %d (%s): list the chain leaf first, each certificate followed by its issuer",
					j+1, subject(certs[j]), j, subject(certs[j-1]))})
				break
			}
		}
		for k, sni := range e.SNIs {
			if sni == "*" || covers(certs[0], sni) {
				continue
			}
			out = append(out, finding{field: fmt.Sprintf("snis[%d]", e.sniIndex(k)), msg: fmt.Sprintf("%s is not covered by %s (its names: %s)",
				sni, describe(e.written(certField), ch.Cert), sanList(certs[0]))})
		}
		if key != nil && complete {
			ders := make([][]byte, len(certs))
			for j, c := range certs {
				ders[j] = c.Raw
			}
			m.Chains = append(m.Chains, tls.Certificate{Certificate: ders, PrivateKey: key, Leaf: certs[0]})
			m.keys = append(m.keys, keyPEM)
		}
	}
	out = append(out, e.hygieneFindings(parsed)...)
	if e.ClientCA != "" {
		caPEM, ok, err := get("client.ca", e.ClientCA)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			pool, problems := parseCAs(caPEM, now)
			for _, p := range problems {
				out = append(out, finding{field: "client.ca", msg: p})
			}
			if pool == nil {
				complete = false
			}
			m.ClientCAs = pool
		}
	}
	for _, f := range out {
		if !f.warn {
			complete = false
		}
	}
	if !complete {
		m = nil
	}
	return m, out, nil
}

// describe names a field for a message, with its reference when the value
// is one (a reference is not secret; the value behind it is).
func describe(field, value string) string {
	if IsReference(value) {
		return field + " (" + value + ")"
	}
	return field
}

func subject(c *x509.Certificate) string {
	if c.Subject.CommonName != "" {
		return "CN=" + c.Subject.CommonName
	}
	if len(c.DNSNames) > 0 {
		return c.DNSNames[0]
	}
	return "serial " + c.SerialNumber.Text(16)
}

func sanList(c *x509.Certificate) string {
	if len(c.DNSNames) == 0 {
		return "no DNS names"
	}
	const max = 5
	if len(c.DNSNames) > max {
		return strings.Join(c.DNSNames[:max], ", ") + fmt.Sprintf(" and %d more", len(c.DNSNames)-max)
	}
	return strings.Join(c.DNSNames, ", ")
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// approx formats a duration in days or hours, for people.
func approx(d time.Duration) string {
	if d >= 48*time.Hour {
		return fmt.Sprintf("%d days", int(d/(24*time.Hour)))
	}
	return fmt.Sprintf("%dh", int(d/time.Hour))
}
