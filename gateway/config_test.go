package gateway

import (
	"crypto/tls"
	"slices"
	"strings"
	"testing"
)

func TestParseTLS12CipherSuites(t *testing.T) {
	tests := []struct {
		name    string
		list    string
		want    []uint16
		wantErr string
	}{
		{"one", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}, ""},
		{"CBC for old clients", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA}, ""},
		{"duplicates once", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}, ""},
		{"insecure", "TLS_ECDHE_RSA_WITH_RC4_128_SHA", nil, "insecure"},
		{"unknown", "TLS_NOPE", nil, "unknown cipher suite"},
		{"TLS 1.3", "TLS_AES_128_GCM_SHA256", nil, "TLS 1.3"},
		{"empty", " , ", nil, "no cipher suite"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTLS12CipherSuites(tt.list)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseTLS12CipherSuites(%q) = %v, %v; want an error containing %q", tt.list, got, err, tt.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("ParseTLS12CipherSuites(%q) = %v, %v; want %v", tt.list, got, err, tt.want)
			}
		})
	}
}

// TestTLS12CipherSuites: by default a TLS 1.2 client offering only a CBC
// suite is refused, and an AEAD suite is negotiated; Options can add the
// CBC suite back for old clients.
func TestTLS12CipherSuites(t *testing.T) {
	p := newPKI(t)
	cfg := Config{Entities: []Entity{p.entity(t, "a", "a.example.com")}}
	cbc := []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA}
	tests := []struct {
		name   string
		opts   Options
		offer  []uint16
		wantOK bool
	}{
		{"default refuses CBC", Options{}, cbc, false},
		{"default negotiates AEAD", Options{}, nil, true},
		{"configured CBC", Options{TLS12CipherSuites: append(DefaultTLS12CipherSuites(), cbc...)}, cbc, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, addr := serve(t, tt.opts, cfg)
			c := p.clientConfig("a.example.com")
			c.MaxVersion = tls.VersionTLS12
			c.CipherSuites = tt.offer
			conn, err := handshake(addr, c)
			if (err == nil) != tt.wantOK {
				t.Fatalf("TLS 1.2 handshake offering %v: err %v, want ok %v", tt.offer, err, tt.wantOK)
			}
			if err != nil {
				return
			}
			defer conn.Close()
			suite := conn.ConnectionState().CipherSuite
			if tt.offer == nil && !slices.Contains(DefaultTLS12CipherSuites(), suite) {
				t.Errorf("negotiated %s, want one of the AEAD defaults", tls.CipherSuiteName(suite))
			}
		})
	}
}
