package schema

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
)

// heldMaterial is the material parsed during validation as an entity
// holds it until Material hands it over: each chain's DER certificates
// and its key's PEM, without their parsed forms. An entity holds it from
// validation to the first apply, and a cold start validates every entity
// before it applies any: parsed, a leaf and a key were ~3.6 KiB of
// pointer-dense heap per entity (360 MB at 100,000 entities, issue 13),
// held as bytes ~0.9 KiB the collector does not scan. Material parses the
// leaf and the key again, once, on their way to the gateway.
type heldMaterial struct {
	chains    []heldChain
	clientCAs *x509.CertPool
}

type heldChain struct {
	certs [][]byte // DER, leaf first
	key   []byte   // PEM
}

// hold returns m in held form; nil for nil.
func hold(m *Material) *heldMaterial {
	if m == nil {
		return nil
	}
	h := &heldMaterial{chains: make([]heldChain, len(m.Chains)), clientCAs: m.ClientCAs}
	for i, c := range m.Chains {
		h.chains[i] = heldChain{certs: c.Certificate, key: m.keys[i]}
	}
	return h
}

// material parses the held chains' leaves and keys again. An error names
// neither a value nor a key.
func (h *heldMaterial) material() (*Material, error) {
	m := &Material{Chains: make([]tls.Certificate, len(h.chains)), ClientCAs: h.clientCAs}
	for i, c := range h.chains {
		leaf, err := x509.ParseCertificate(c.certs[0])
		if err != nil {
			return nil, fmt.Errorf("chain %d: %w", i, err)
		}
		key, err := ParseKey(c.key)
		if err != nil {
			return nil, fmt.Errorf("chain %d: %w", i, err)
		}
		m.Chains[i] = tls.Certificate{Certificate: c.certs, PrivateKey: key, Leaf: leaf}
	}
	return m, nil
}
