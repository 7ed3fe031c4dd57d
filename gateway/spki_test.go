package gateway

import (
	"crypto/tls"
	"strings"
	"testing"

	"certops/fixtures"
)

func TestKeyMatchesCertificate(t *testing.T) {
	ca := fixtures.NewRootCA(t, "spki test CA")
	for _, kt := range []fixtures.KeyType{fixtures.ECDSA, fixtures.RSA, fixtures.Ed25519} {
		leaf := ca.Leaf(t, fixtures.LeafOptions{DNSNames: []string{"a.example.com"}, Key: kt})
		other := leaf.Mismatched(t)
		tests := []struct {
			name      string
			der       []byte
			leaf      *fixtures.Leaf
			wantMatch bool
			wantOK    bool
		}{
			{"own key", leaf.Cert.Raw, leaf, true, true},
			{"another key", leaf.Cert.Raw, other, false, true},
			{"truncated certificate", leaf.Cert.Raw[:40], leaf, false, false},
			{"not DER", []byte("-----BEGIN CERTIFICATE-----"), leaf, false, false},
		}
		for _, tt := range tests {
			t.Run(kt.String()+"/"+tt.name, func(t *testing.T) {
				match, ok := keyMatchesCertificate(tt.der, tt.leaf.Key.Public())
				if match != tt.wantMatch || ok != tt.wantOK {
					t.Errorf("keyMatchesCertificate(%s) = %v, %v, want %v, %v", tt.name, match, ok, tt.wantMatch, tt.wantOK)
				}
			})
		}
	}
}

// TestReapplyRefusesMismatchedKey gives the running leaf again with a key
// that does not match it: the fast path for unchanged leaves must still
// refuse the Config, and the running snapshot keeps serving.
func TestReapplyRefusesMismatchedKey(t *testing.T) {
	p := newPKI(t)
	leaf := p.root.Leaf(t, fixtures.LeafOptions{DNSNames: []string{"a.example.com"}})
	good := Entity{Name: "a", SNIs: []string{"a.example.com"}, Chains: []tls.Certificate{leaf.TLS(t)}}
	s, addr := serve(t, Options{}, Config{Entities: []Entity{good}})

	bad := good
	// No Leaf: the fast path does not need the parsed leaf.
	bad.Chains = []tls.Certificate{{Certificate: [][]byte{leaf.Cert.Raw}, PrivateKey: leaf.Mismatched(t).Key}}
	err := s.Apply(Config{Entities: []Entity{bad}})
	if err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("Apply(same leaf, other key) = %v, want a key mismatch error", err)
	}
	conn, err := handshake(addr, p.clientConfig("a.example.com"))
	if err != nil {
		t.Fatalf("handshake after a refused Apply: %v", err)
	}
	conn.Close()
}
