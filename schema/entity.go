package schema

import (
	"crypto/tls"
	"crypto/x509"
	"log/slog"
)

// Type is the role of an SSL entity.
type Type string

// Entity types (DESIGN.md 2).
const (
	TypeServer Type = "server" // served to clients by SNI
	TypeClient Type = "client" // presented by the gateway to an upstream
)

// String returns the type as written in entity files.
func (t Type) String() string { return string(t) }

// Entity is one SSL entity as written in the repository, after schema
// validation. Cert, key and client CA values are either PEM text or secret
// references; [Entity.Material] turns them into usable certificates.
// An Entity holds no parsed private key, so it is safe to log and compare.
type Entity struct {
	Name   string
	Type   Type
	SNIs   []string // normalised: lowercase, no trailing dot
	Chains []Chain  // cert/key first, then certs[i]/keys[i]
	// ClientCA is the PEM bundle (or secret reference) of the CAs that
	// client certificates must chain to; empty means no mTLS.
	ClientCA    string
	ClientDepth int // intermediates allowed below ClientCA (default 1)
	Protocols   []string
	Labels      map[string]string
	// Pos is where the entity's document starts.
	Pos Pos
	// Hash is the SHA-256 of the document's source bytes, for reuse of
	// results across revisions.
	Hash string
}

// Chain is one certificate chain of an entity and its key, each PEM text
// or a secret reference.
type Chain struct {
	Cert string
	Key  string
}

// Material is an entity's parsed certificates: what the gateway serves.
// It holds private keys; never log or print it.
type Material struct {
	Chains    []tls.Certificate // Leaf set
	ClientCAs *x509.CertPool    // nil when the entity has no client CA
}

// LogValue redacts the material in logs.
func (m *Material) LogValue() slog.Value { return slog.StringValue("[material redacted]") }
