package gateway

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"net"
	"time"
)

// Served-state proof: after an apply, the caller dials the gateway on
// loopback and checks that each name is served with the leaf it applied.
// It proves what clients see (listener, selection, snapshot swap), not
// what the configuration says.

// Probe is one loopback handshake of the served-state proof.
type Probe struct {
	Entity     string
	ServerName string // the SNI sent; "" sends none
	// KeyType asks for the entity's chain of that type ("rsa", "ecdsa"
	// or "ed25519") by offering TLS 1.2 with only the matching cipher
	// suites; "" offers the defaults, so the gateway's own choice is seen.
	KeyType string
	// Want are the SHA-256 fingerprints (hex) of the leaves that pass.
	Want []string
}

// ProbeResult is the outcome of a Probe: the fingerprint of the leaf
// served, or why none was seen.
type ProbeResult struct {
	Probe
	Got string
	Err error
}

// OK reports whether the served leaf is one the probe wants.
func (r ProbeResult) OK() bool {
	if r.Err != nil {
		return false
	}
	for _, w := range r.Want {
		if w == r.Got {
			return true
		}
	}
	return false
}

// errNoLeaf is a probe that saw no certificate.
var errNoLeaf = errors.New("no certificate served")

// VerifyServed runs every probe against the gateway at addr (host:port)
// and returns one result per probe, in order. The leaf is read as the
// client receives it, so an entity that requires client certificates is
// probed too (the handshake then fails after the server's certificate,
// which is what counts). Certificates are not verified: the probe
// compares fingerprints.
func VerifyServed(ctx context.Context, addr string, probes []Probe) []ProbeResult {
	out := make([]ProbeResult, len(probes))
	for i, p := range probes {
		out[i] = ProbeResult{Probe: p}
		out[i].Got, out[i].Err = probe(ctx, addr, p)
	}
	return out
}

func probe(ctx context.Context, addr string, p Probe) (string, error) {
	var leaf string
	cfg := &tls.Config{
		ServerName:         p.ServerName,
		InsecureSkipVerify: true, // fingerprints are compared instead
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) > 0 {
				sum := sha256.Sum256(cs.PeerCertificates[0].Raw)
				leaf = hex.EncodeToString(sum[:])
			}
			return nil
		},
		// The key exchange does not matter to the proof: X25519 alone
		// spares the gateway the ML-KEM half of Go's default hybrid.
		CurvePreferences: []tls.CurveID{tls.X25519},
		// A client certificate is asked for by mTLS entities: send none.
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &tls.Certificate{}, nil },
	}
	switch p.KeyType {
	case "rsa":
		cfg.MaxVersion = tls.VersionTLS12
		cfg.CipherSuites = []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256}
	case "ecdsa", "ed25519":
		cfg.MaxVersion = tls.VersionTLS12
		cfg.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	d := tls.Dialer{NetDialer: &net.Dialer{}, Config: cfg}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if conn != nil {
		conn.Close()
	}
	if leaf != "" {
		return leaf, nil // a later failure (no client certificate) does not matter
	}
	if err == nil {
		err = errNoLeaf
	}
	return "", err
}
