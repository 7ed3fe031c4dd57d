package gateway

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"strings"
	"testing"

	"certops/fixtures"
)

// dualEntity has an RSA and an ECDSA chain for one name, RSA given first.
func dualEntity(tb testing.TB, p *pki, name, sni string, keys ...fixtures.KeyType) Entity {
	tb.Helper()
	e := Entity{Name: name, SNIs: []string{sni}}
	for _, k := range keys {
		leaf := p.root.Leaf(tb, fixtures.LeafOptions{DNSNames: []string{sni}, Key: k})
		e.Chains = append(e.Chains, leaf.TLS(tb))
	}
	return e
}

func TestDualCertificates(t *testing.T) {
	p := newPKI(t)
	var res results
	_, addr := serve(t, Options{OnHandshake: res.record}, Config{Entities: []Entity{
		dualEntity(t, p, "dual", "dual.example.com", fixtures.RSA, fixtures.ECDSA),
		dualEntity(t, p, "modern", "modern.example.com", fixtures.Ed25519, fixtures.ECDSA),
	}})
	rsaSuites := []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256}
	ecdsaSuites := []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}
	tests := []struct {
		name    string
		sni     string
		max     uint16
		suites  []uint16
		want    x509.PublicKeyAlgorithm
		wantErr bool
	}{
		{"modern client gets ECDSA though RSA is listed first", "dual.example.com", tls.VersionTLS13, nil, x509.ECDSA, false},
		{"TLS 1.2 client offering RSA suites only", "dual.example.com", tls.VersionTLS12, rsaSuites, x509.RSA, false},
		{"TLS 1.2 client offering ECDSA suites only", "dual.example.com", tls.VersionTLS12, ecdsaSuites, x509.ECDSA, false},
		{"ECDSA before Ed25519 keeps the given order", "modern.example.com", tls.VersionTLS13, nil, x509.Ed25519, false},
		{"no chain fits the client", "modern.example.com", tls.VersionTLS12, rsaSuites, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := p.clientConfig(tt.sni)
			cfg.MaxVersion, cfg.CipherSuites = tt.max, tt.suites
			conn, err := handshake(addr, cfg)
			if tt.wantErr {
				if err == nil {
					conn.Close()
					t.Fatalf("handshake(%s) succeeded, want a handshake failure", tt.sni)
				}
				if !isAlert(err, "handshake failure") {
					t.Errorf("handshake(%s) = %v, want the handshake_failure alert", tt.sni, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("handshake(%s): %v", tt.sni, err)
			}
			defer conn.Close()
			if got := conn.ConnectionState().PeerCertificates[0].PublicKeyAlgorithm; got != tt.want {
				t.Errorf("handshake(%s) served a %v certificate, want %v", tt.sni, got, tt.want)
			}
		})
	}
	if got := res.wait(t, len(tests)); got[HandshakeProtocol] != 1 || got[HandshakeOK] != len(tests)-1 {
		t.Errorf("OnHandshake results = %v, want 1 protocol, %d ok", got, len(tests)-1)
	}
}

// TestDualCertificatesOpenSSL offers TLS 1.3 signature algorithms one
// family at a time, which Go's client cannot do.
func TestDualCertificatesOpenSSL(t *testing.T) {
	if testing.Short() {
		t.Skip("runs openssl")
	}
	p := newPKI(t)
	_, addr := serve(t, Options{}, Config{Entities: []Entity{
		dualEntity(t, p, "dual", "dual.example.com", fixtures.RSA, fixtures.ECDSA),
		dualEntity(t, p, "ec", "ec.example.com", fixtures.ECDSA),
	}})
	tests := []struct {
		sni, sigalgs string
		wantOK       bool
		want         string
	}{
		{"dual.example.com", "ecdsa_secp256r1_sha256", true, "Signature type: ECDSA"},
		{"dual.example.com", "rsa_pss_rsae_sha256", true, "Signature type: RSA-PSS"},
		{"ec.example.com", "rsa_pss_rsae_sha256", false, "handshake failure"},
	}
	for _, tt := range tests {
		t.Run(tt.sni+" "+tt.sigalgs, func(t *testing.T) {
			out, err := openssl(t, addr, "-tls1_3", "-servername", tt.sni, "-sigalgs", tt.sigalgs)
			if tt.wantOK != (err == nil) || !strings.Contains(out, tt.want) {
				t.Errorf("openssl -sigalgs %s -servername %s: err = %v, want success %v and %q in:\n%s", tt.sigalgs, tt.sni, err, tt.wantOK, tt.want, out)
			}
		})
	}
}

// opaqueSigner hides the key type, as an HSM or KMS signer does: the
// gateway keeps such a key as given (pinned).
type opaqueSigner struct{ crypto.Signer }

// TestServedChains re-applies the chains the gateway gives back, without
// keys, and checks that they are served with their running keys.
func TestServedChains(t *testing.T) {
	p := newPKI(t)
	dual := dualEntity(t, p, "dual", "dual.example.com", fixtures.RSA, fixtures.ECDSA)
	pinned := p.entity(t, "pinned", "pinned.example.com")
	pinned.Chains[0].PrivateKey = opaqueSigner{pinned.Chains[0].PrivateKey.(crypto.Signer)}
	srv, addr := serve(t, Options{}, Config{Entities: []Entity{dual, pinned}})

	tests := []struct {
		name   string
		want   [][]byte // leaves, in the order served
		wantOK bool
	}{
		{"dual", [][]byte{dual.Chains[1].Certificate[0], dual.Chains[0].Certificate[0]}, true},
		{"pinned", nil, false},
		{"absent", nil, false},
	}
	for _, tt := range tests {
		chains, ok := srv.ServedChains(tt.name)
		if ok != tt.wantOK || len(chains) != len(tt.want) {
			t.Fatalf("ServedChains(%q) = %d chains, %v, want %d, %v", tt.name, len(chains), ok, len(tt.want), tt.wantOK)
		}
		for i, c := range chains {
			if c.PrivateKey != nil || c.Leaf != nil || !bytes.Equal(c.Certificate[0], tt.want[i]) {
				t.Errorf("ServedChains(%q)[%d]: key %v, leaf %v, leaf DER equal %v; want no key, no leaf, equal DER",
					tt.name, i, c.PrivateKey != nil, c.Leaf != nil, bytes.Equal(c.Certificate[0], tt.want[i]))
			}
		}
	}

	served, _ := srv.ServedChains("dual")
	dual.Chains = served
	if err := srv.Apply(Config{Entities: []Entity{dual, pinned}}); err != nil {
		t.Fatalf("Apply(served chains without keys): %v", err)
	}
	for _, rsa := range []bool{false, true} {
		cfg := p.clientConfig("dual.example.com")
		want := x509.ECDSA
		if rsa {
			cfg.MaxVersion = tls.VersionTLS12
			cfg.CipherSuites = []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}
			want = x509.RSA
		}
		conn, err := handshake(addr, cfg)
		if err != nil {
			t.Fatalf("handshake(dual, RSA only %v) after re-applying served chains: %v", rsa, err)
		}
		if got := conn.ConnectionState().PeerCertificates[0].PublicKeyAlgorithm; got != want {
			t.Errorf("handshake(dual, RSA only %v) served %v, want %v", rsa, got, want)
		}
		conn.Close()
	}
}
