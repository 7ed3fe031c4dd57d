package gateway

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"math/big"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// keyMatchesCertificate reports whether pub is the subject public key of
// the DER certificate der, without parsing the certificate: it walks the
// TBSCertificate to the SubjectPublicKeyInfo (RFC 5280 section 4.1) and
// compares the key's bytes. ok is false when der cannot be walked or pub is
// of another type; the caller then parses the certificate instead.
func keyMatchesCertificate(der []byte, pub crypto.PublicKey) (match, ok bool) {
	input := cryptobyte.String(der)
	var cert, tbs, spki, alg cryptobyte.String
	var key []byte
	if !input.ReadASN1(&cert, asn1.SEQUENCE) ||
		!cert.ReadASN1(&tbs, asn1.SEQUENCE) ||
		!tbs.SkipOptionalASN1(asn1.Tag(0).Constructed().ContextSpecific()) || // version
		!tbs.SkipASN1(asn1.INTEGER) || // serialNumber
		!tbs.SkipASN1(asn1.SEQUENCE) || // signature
		!tbs.SkipASN1(asn1.SEQUENCE) || // issuer
		!tbs.SkipASN1(asn1.SEQUENCE) || // validity
		!tbs.SkipASN1(asn1.SEQUENCE) || // subject
		!tbs.ReadASN1(&spki, asn1.SEQUENCE) ||
		!spki.ReadASN1(&alg, asn1.SEQUENCE) ||
		!spki.ReadASN1BitStringAsBytes(&key) {
		return false, false
	}
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		// The subjectPublicKey of an EC key is its uncompressed point
		// (RFC 5480 section 2.2); the curve is part of the point's length
		// and of the certificate that an earlier Apply parsed.
		b, err := k.Bytes()
		return err == nil && bytes.Equal(b, key), true
	case ed25519.PublicKey:
		return bytes.Equal(k, key), true // RFC 8410 section 4
	case *rsa.PublicKey:
		// RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER } (RFC 8017 A.1.1)
		s := cryptobyte.String(key)
		var seq cryptobyte.String
		n, e := new(big.Int), 0
		if !s.ReadASN1(&seq, asn1.SEQUENCE) || !seq.ReadASN1Integer(n) || !seq.ReadASN1Integer(&e) {
			return false, false
		}
		return n.Cmp(k.N) == 0 && e == k.E, true
	}
	return false, false
}
