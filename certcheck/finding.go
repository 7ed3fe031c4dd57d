package certcheck

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
)

// Finding is one problem found by a check.
type Finding struct {
	Check    Check
	Severity Severity
	// Entity is the name of the entity the finding is about.
	Entity string
	// Field is the entity's field holding the certificate: "cert" or
	// "certs[i]", as Chain.Field says.
	Field string
	// Message describes the problem with subjects, serials and
	// fingerprints only; it never holds a PEM block or a key.
	Message string
}

// String formats the finding as "entity: field: severity: message [check]".
func (f Finding) String() string {
	return fmt.Sprintf("%s: %s: %s: %s [%s]", f.Entity, f.Field, f.Severity, f.Message, f.Check)
}

// name describes a certificate for a message: its subject's common name,
// else its first DNS name, else its serial.
func name(c *x509.Certificate) string {
	switch {
	case c.Subject.CommonName != "":
		return "CN=" + c.Subject.CommonName
	case len(c.DNSNames) > 0:
		return c.DNSNames[0]
	}
	return "serial " + c.SerialNumber.Text(16)
}

// issuerName describes the issuer of c by its common name, else its whole
// distinguished name.
func issuerName(c *x509.Certificate) string {
	if c.Issuer.CommonName != "" {
		return "CN=" + c.Issuer.CommonName
	}
	return c.Issuer.String()
}

// PublicKeyFingerprint returns the hex SHA-256 of c's SubjectPublicKeyInfo,
// the identity of its key (what the admin API calls public_key_sha256).
func PublicKeyFingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:])
}
