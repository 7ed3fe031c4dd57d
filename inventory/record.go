package inventory

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"certops/certcheck"
	"certops/plan"
	"certops/schema"
)

// Record is one certificate chain of an entity, described by its leaf.
type Record struct {
	Entity    string            `json:"entity"`
	Type      string            `json:"type"`
	SNIs      []string          `json:"snis"`
	File      string            `json:"file"`
	Line      int               `json:"line,omitempty"`
	Chain     string            `json:"chain"` // the field: cert or certs[i]
	Subject   string            `json:"subject,omitempty"`
	Issuer    string            `json:"issuer,omitempty"`
	Serial    string            `json:"serial,omitempty"`
	KeyType   string            `json:"key_type,omitempty"` // RSA, ECDSA, Ed25519
	KeyBits   int               `json:"key_bits,omitempty"`
	NotBefore time.Time         `json:"not_before,omitzero"`
	NotAfter  time.Time         `json:"not_after,omitzero"`
	DaysLeft  int               `json:"days_left"`
	Trust     certcheck.Trust   `json:"trust,omitempty"`
	Labels    map[string]string `json:"labels,omitempty"`
	Owner     string            `json:"owner,omitempty"`
	// Commit is the Git commit that last changed File, when the source
	// is a Git working copy.
	Commit string `json:"commit,omitempty"`
	// CertRef is the secret reference of a certificate not read here.
	CertRef string `json:"cert_ref,omitempty"`
	// PublicKeySHA256 identifies the key (SHA-256 of the SPKI, hex).
	PublicKeySHA256 string `json:"public_key_sha256,omitempty"`
}

// Known reports whether the record's certificate was read (it is not an
// unresolved secret reference).
func (r *Record) Known() bool { return !r.NotAfter.IsZero() }

// Key returns the key type and size for people: "RSA 2048", "ECDSA P-256".
func (r *Record) Key() string {
	switch {
	case r.KeyType == "":
		return ""
	case r.KeyType == "ECDSA":
		return fmt.Sprintf("ECDSA P-%d", r.KeyBits)
	case r.KeyBits > 0 && r.KeyType != "Ed25519":
		return fmt.Sprintf("%s %d", r.KeyType, r.KeyBits)
	}
	return r.KeyType
}

// OwnerLabels are the labels tried, in order, for a record's owner when
// no owner label is named.
var OwnerLabels = []string{"owner", "team"}

// owner returns the value of label (or the first of OwnerLabels present).
func owner(labels map[string]string, label string) string {
	if label != "" {
		return labels[label]
	}
	for _, l := range OwnerLabels {
		if v := labels[l]; v != "" {
			return v
		}
	}
	return ""
}

// Options tune how records are built.
type Options struct {
	// Now is the time days left are counted from.
	Now time.Time
	// OwnerLabel names the label that holds the owner; "" tries
	// OwnerLabels.
	OwnerLabel string
	// Checker, when set, judges each chain's trust.
	Checker *certcheck.Checker
}

// FromEntities describes the chains of validated entities. Literal PEM is
// parsed; a certificate behind a secret reference is listed by its
// reference only. Records come in the entities' order.
func FromEntities(es []*schema.Entity, opts Options) []Record {
	var out []Record
	for _, e := range es {
		for i, ch := range e.Chains {
			field := "cert"
			if i > 0 {
				field = fmt.Sprintf("certs[%d]", i-1)
			}
			pos := e.Position(field)
			r := Record{Entity: e.Name, Type: e.Type.String(), SNIs: slices.Clone(e.SNIs), File: e.Pos.File, Line: pos.Line,
				Chain: field, Labels: maps.Clone(e.Labels), Owner: owner(e.Labels, opts.OwnerLabel)}
			if schema.IsReference(ch.Cert) {
				r.CertRef = ch.Cert
				out = append(out, r)
				continue
			}
			certs := parseCerts([]byte(ch.Cert))
			if len(certs) > 0 {
				describe(&r, certs[0], opts.Now)
				if opts.Checker != nil {
					r.Trust = opts.Checker.Trust(certs)
				}
			}
			out = append(out, r)
		}
	}
	return out
}

// FromSSLs describes the chains a running daemon serves, from its
// GET /api/v1/ssls: the issuer as the daemon read it, and the trust
// verdict the daemon's hygiene checks gave under its roots (--roots and
// the repository's *.roots.pem), empty when they did not run. A daemon
// older than the issuer and trust fields leaves those columns empty.
func FromSSLs(docs []plan.EntityInfo, opts Options) []Record {
	var out []Record
	for _, d := range docs {
		for i, ch := range d.Chains {
			field := "cert"
			if i > 0 {
				field = fmt.Sprintf("certs[%d]", i-1)
			}
			r := Record{Entity: d.Name, Type: d.Type, SNIs: slices.Clone(d.SNIs), File: d.File, Chain: field,
				Labels: maps.Clone(d.Labels), Owner: owner(d.Labels, opts.OwnerLabel), Subject: d.Chains[i].Subject,
				Issuer: ch.Issuer, Serial: ch.Serial, NotBefore: ch.NotBefore, NotAfter: ch.NotAfter, CertRef: ch.CertRef,
				PublicKeySHA256: ch.PublicKeyFingerprint, Trust: certcheck.Trust(ch.Trust)}
			r.KeyType, r.KeyBits = parseKeyType(ch.KeyType)
			if r.Known() {
				r.DaysLeft = daysLeft(r.NotAfter, opts.Now)
			}
			out = append(out, r)
		}
	}
	return out
}

func describe(r *Record, c *x509.Certificate, now time.Time) {
	r.Subject = c.Subject.String()
	r.Issuer = c.Issuer.String()
	r.Serial = c.SerialNumber.Text(16)
	r.NotBefore, r.NotAfter = c.NotBefore.UTC(), c.NotAfter.UTC()
	r.DaysLeft = daysLeft(c.NotAfter, now)
	r.PublicKeySHA256 = certcheck.PublicKeyFingerprint(c)
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		r.KeyType, r.KeyBits = "RSA", k.N.BitLen()
	case *ecdsa.PublicKey:
		r.KeyType, r.KeyBits = "ECDSA", k.Curve.Params().BitSize
	case ed25519.PublicKey:
		r.KeyType, r.KeyBits = "Ed25519", 256
	default:
		r.KeyType = fmt.Sprintf("%v", c.PublicKeyAlgorithm)
	}
}

// parseKeyType reads the admin API's key type ("RSA 2048", "ECDSA P-256",
// "Ed25519").
func parseKeyType(s string) (string, int) {
	typ, size, _ := strings.Cut(s, " ")
	bits, _ := strconv.Atoi(strings.TrimPrefix(size, "P-"))
	if typ == "Ed25519" {
		bits = 256
	}
	return typ, bits
}

// daysLeft counts whole days from now to notAfter; negative once expired.
func daysLeft(notAfter, now time.Time) int {
	d := notAfter.Sub(now)
	if d < 0 {
		return -int((-d + 24*time.Hour - 1) / (24 * time.Hour))
	}
	return int(d / (24 * time.Hour))
}

func parseCerts(b []byte) []*x509.Certificate {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			return out
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return out
		}
		out = append(out, c)
	}
}
