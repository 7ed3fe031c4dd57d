package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"

	"certops/clientauth"
)

// MaxClientDepth is the largest Entity.ClientDepth: the most intermediates
// the gateway verifies between a client certificate and its CA. It lives in
// package clientauth so that the schema, which may not import the gateway,
// clamps client.depth to the same bound.
const MaxClientDepth = clientauth.MaxDepth

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
	// A chain whose leaf the running configuration serves for this entity,
	// byte for byte, may have a nil PrivateKey: it keeps the running key,
	// so a caller that re-applies unchanged chains need not keep their
	// parsed keys (pointer-dense heap; see the package documentation).
	// The first chain the client supports is served, ECDSA and Ed25519
	// chains before RSA whatever their order here.
	Chains []tls.Certificate
	// ClientCAs, when non-nil, makes the entity require client certificates
	// that chain to one of these CAs (mTLS).
	ClientCAs *x509.CertPool
	// ClientDepth bounds the intermediates between a client certificate
	// and its CA (0..MaxClientDepth), as the entity's client.depth says: 0 accepts
	// only certificates issued directly by one of the ClientCAs. The
	// schema's default is 1; the zero value here is the strictest bound,
	// never a looser one.
	ClientDepth int
	// MinVersion and MaxVersion bound the TLS version (tls.VersionTLS12 or
	// tls.VersionTLS13; older versions are refused by Apply); zero means
	// TLS 1.2 and TLS 1.3 respectively.
	MinVersion, MaxVersion uint16
}

// DefaultTLS12CipherSuites returns the TLS 1.2 cipher suites offered
// unless Options.TLS12CipherSuites says otherwise: ECDHE key exchange with
// an AEAD only (AES-GCM or ChaCha20-Poly1305), the ECDSA suites serving
// Ed25519 chains too. The CBC suites crypto/tls would add (SHA-1 MACs,
// flagged "potentially vulnerable" to LUCKY13 by scanners) are left out.
// TLS 1.3 suites are not configurable and always AEAD.
func DefaultTLS12CipherSuites() []uint16 {
	return []uint16{
		tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
		tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
		tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	}
}

// ParseTLS12CipherSuites reads a comma-separated list of TLS 1.2 cipher
// suite names as crypto/tls and IANA spell them
// ("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"). Only the suites crypto/tls
// considers secure are accepted; TLS 1.3 suites, unknown names and an
// empty list are errors.
func ParseTLS12CipherSuites(list string) ([]uint16, error) {
	byName := make(map[string]*tls.CipherSuite)
	for _, cs := range tls.CipherSuites() {
		byName[cs.Name] = cs
	}
	insecure := make(map[string]bool)
	for _, cs := range tls.InsecureCipherSuites() {
		insecure[cs.Name] = true
	}
	var ids []uint16
	for _, name := range strings.Split(list, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		cs, ok := byName[name]
		switch {
		case insecure[name]:
			return nil, fmt.Errorf("cipher suite %s is insecure and not offered", name)
		case !ok:
			return nil, fmt.Errorf("unknown cipher suite %q (want names such as TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256)", name)
		case !slices.Contains(cs.SupportedVersions, tls.VersionTLS12):
			return nil, fmt.Errorf("cipher suite %s is a TLS 1.3 suite, which is not configurable", name)
		}
		if !slices.Contains(ids, cs.ID) {
			ids = append(ids, cs.ID)
		}
	}
	if len(ids) == 0 {
		return nil, errors.New("no cipher suite named")
	}
	return ids, nil
}
