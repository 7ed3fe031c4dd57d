package gateway

import (
	"crypto/tls"
	"crypto/x509"
)

// Config is the complete desired state of the gateway: every entity it
// serves. It is plain data; [Server.Apply] checks it as a whole and turns
// it into an immutable snapshot, copying the certificates and keys it
// needs, so the caller may drop or reuse the Config once Apply returns
// (and should drop it: see the package documentation on memory). Only the
// ClientCAs pools are kept by reference and must not be modified.
type Config struct {
	Entities []Entity
}

// Entity is one SSL entity as the gateway sees it: the names it answers
// for and the certificate chains it presents.
type Entity struct {
	// Name identifies the entity in logs, in the JSON answer and for
	// upstream client certificates. Names are unique within a Config.
	Name string
	// Client marks a certificate the gateway presents to an upstream
	// (type: client); such an entity has no SNIs.
	Client bool
	// SNIs are the server names the entity answers for: exact names,
	// "*.parent" wildcards covering one label, or "*" for the default entity.
	// Apply lowercases them and removes one trailing dot, and refuses a name
	// claimed twice in one Config. Internationalised names are given as
	// IDN A-labels ("xn--..."), as clients send them.
	SNIs []string
	// Chains are the certificate chains of the entity, leaf first, with
	// their private keys. Leaf should be set; Apply parses it otherwise.
	// The first chain the client supports is served, ECDSA and Ed25519
	// chains before RSA whatever their order here.
	Chains []tls.Certificate
	// ClientCAs, when non-nil, makes the entity require client certificates
	// that chain to one of these CAs (mTLS).
	ClientCAs *x509.CertPool
	// ClientDepth bounds the intermediates between a client certificate
	// and its CA (0..16), as the entity's client.depth says: 0 accepts
	// only certificates issued directly by one of the ClientCAs. The
	// schema's default is 1; the zero value here is the strictest bound,
	// never a looser one.
	ClientDepth int
	// MinVersion and MaxVersion bound the TLS version (tls.VersionTLS12 or
	// tls.VersionTLS13; older versions are refused by Apply); zero means
	// TLS 1.2 and TLS 1.3 respectively.
	MinVersion, MaxVersion uint16
}
