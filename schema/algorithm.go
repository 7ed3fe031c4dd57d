package schema

import (
	"crypto/x509/pkix"
	"encoding/asn1"
	"fmt"
)

// This file names the public-key algorithm of a key or certificate that
// crypto/x509 cannot parse, so that the message says which algorithm it is
// and that it is unsupported (issue 18) rather than that the block does not
// parse.

// supportedKeys is what the gateway can serve, for messages.
const supportedKeys = "want RSA, ECDSA P-256, P-384 or P-521, or Ed25519"

// Algorithm and named-curve identifiers, RFC 5480, RFC 8410, GM/T 0006,
// RFC 5639, RFC 7091.
var algorithmNames = map[string]string{
	"1.2.840.113549.1.1.1":  "RSA",
	"1.2.840.113549.1.1.10": "RSASSA-PSS",
	"1.2.840.10040.4.1":     "DSA",
	"1.2.840.10045.2.1":     "ECDSA",
	"1.2.156.10197.1.301":   "SM2",
	"1.3.101.110":           "X25519",
	"1.3.101.111":           "X448",
	"1.3.101.112":           "Ed25519",
	"1.3.101.113":           "Ed448",
	"1.2.643.7.1.1.1.1":     "GOST R 34.10-2012 (256-bit)",
	"1.2.643.7.1.1.1.2":     "GOST R 34.10-2012 (512-bit)",
}

var curveNames = map[string]string{
	"1.2.156.10197.1.301":   "SM2",
	"1.2.840.10045.3.1.1":   "P-192",
	"1.3.132.0.33":          "P-224",
	"1.2.840.10045.3.1.7":   "P-256",
	"1.3.132.0.34":          "P-384",
	"1.3.132.0.35":          "P-521",
	"1.3.132.0.10":          "secp256k1",
	"1.3.36.3.3.2.8.1.1.7":  "brainpoolP256r1",
	"1.3.36.3.3.2.8.1.1.11": "brainpoolP384r1",
	"1.3.36.3.3.2.8.1.1.13": "brainpoolP512r1",
}

// algorithmName names an algorithm identifier and, for EC keys, its curve.
func algorithmName(alg pkix.AlgorithmIdentifier) string {
	name, ok := algorithmNames[alg.Algorithm.String()]
	if !ok {
		name = "algorithm " + alg.Algorithm.String()
	}
	if name == "ECDSA" {
		var curve asn1.ObjectIdentifier
		if _, err := asn1.Unmarshal(alg.Parameters.FullBytes, &curve); err == nil {
			return ecCurveName(curve)
		}
	}
	return name
}

func ecCurveName(curve asn1.ObjectIdentifier) string {
	if c, ok := curveNames[curve.String()]; ok {
		if c == "SM2" {
			return "SM2 (ShangMi)"
		}
		return "EC on curve " + c
	}
	return "EC on curve " + curve.String()
}

// keyAlgorithm names the algorithm of a private key block that x509 did
// not parse, or returns "" when the block's structure is not readable.
func keyAlgorithm(blockType string, der []byte) string {
	switch blockType {
	case "PRIVATE KEY":
		var k struct {
			Version   int
			Algorithm pkix.AlgorithmIdentifier
			Key       []byte
		}
		if _, err := asn1.Unmarshal(der, &k); err == nil {
			return algorithmName(k.Algorithm)
		}
	case "EC PRIVATE KEY":
		var k struct {
			Version int
			Key     []byte
			Curve   asn1.ObjectIdentifier `asn1:"optional,explicit,tag:0"`
		}
		if _, err := asn1.Unmarshal(der, &k); err == nil && len(k.Curve) > 0 {
			return ecCurveName(k.Curve)
		}
	}
	return ""
}

// certificateAlgorithm names the public-key algorithm of a certificate that
// x509 did not parse, or returns "".
func certificateAlgorithm(der []byte) string {
	var c struct {
		TBS struct {
			Version   int `asn1:"optional,explicit,default:0,tag:0"`
			Serial    asn1.RawValue
			Signature pkix.AlgorithmIdentifier
			Issuer    asn1.RawValue
			Validity  asn1.RawValue
			Subject   asn1.RawValue
			Key       struct {
				Algorithm pkix.AlgorithmIdentifier
				PublicKey asn1.BitString
			}
		}
	}
	if _, err := asn1.Unmarshal(der, &c); err != nil {
		return ""
	}
	return algorithmName(c.TBS.Key.Algorithm)
}

// unsupportedKey says that a key or certificate uses an algorithm the
// gateway cannot serve.
func unsupportedKey(what, alg string) error {
	return fmt.Errorf("%s uses %s, which certops does not support (%s)", what, alg, supportedKeys)
}

// supportedAlgorithm reports whether alg, as algorithmName names it, is
// one the gateway serves: a parse failure of such a key is not about its
// algorithm.
func supportedAlgorithm(alg string) bool {
	switch alg {
	case "RSA", "Ed25519", "EC on curve P-256", "EC on curve P-384", "EC on curve P-521":
		return true
	}
	return false
}
