package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"certops/fixtures"
)

// mtlsEntity requires client certificates from cas for sni.
func mtlsEntity(tb testing.TB, p *pki, name, sni string, depth int, cas ...*fixtures.CA) Entity {
	tb.Helper()
	e := p.entity(tb, name, sni)
	e.ClientCAs = fixtures.Pool(cas...)
	e.ClientDepth = depth
	return e
}

// mtlsExchange does a handshake and one request, as a client must: in
// TLS 1.3 the server refuses a client certificate after the client's
// handshake returned, so the refusal shows on the first read.
func mtlsExchange(tb testing.TB, addr string, cfg *tls.Config) (ConnectionInfo, tls.ConnectionState, error) {
	tb.Helper()
	conn, err := handshake(addr, cfg)
	if err != nil {
		return ConnectionInfo{}, tls.ConnectionState{}, err
	}
	defer conn.Close()
	status, body, err := request(conn, cfg.ServerName)
	if err != nil {
		return ConnectionInfo{}, conn.ConnectionState(), err
	}
	if status != 200 {
		return ConnectionInfo{}, conn.ConnectionState(), errors.New("status " + string(body))
	}
	var info ConnectionInfo
	return info, conn.ConnectionState(), decodeInfo(body, &info)
}

func TestClientCertificates(t *testing.T) {
	p := newPKI(t)
	inter := p.clientRoot.Intermediate(t, "client intermediate")
	inter2 := inter.Intermediate(t, "client intermediate 2")
	other := fixtures.NewRootCA(t, "other client root")
	var res results
	_, addr := serve(t, Options{OnHandshake: res.record}, Config{Entities: []Entity{
		mtlsEntity(t, p, "m", "m.example.com", 1, p.clientRoot),
		mtlsEntity(t, p, "m2", "m2.example.com", 2, p.clientRoot),
		mtlsEntity(t, p, "m0", "m0.example.com", 0, p.clientRoot),
	}})
	expired := p.clientRoot.Leaf(t, fixtures.LeafOptions{CommonName: "old", Client: true,
		NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-time.Hour)})
	tests := []struct {
		name    string
		sni     string
		leaf    *fixtures.Leaf // nil: no certificate
		want    string         // client subject; "" means rejected
		version uint16
	}{
		{"good", "m.example.com", p.clientRoot.Client(t, "alice"), "CN=alice", 0},
		{"good TLS 1.2", "m.example.com", p.clientRoot.Client(t, "alice"), "CN=alice", tls.VersionTLS12},
		{"through one intermediate", "m.example.com", inter.Client(t, "bob"), "CN=bob", 0},
		{"missing", "m.example.com", nil, "", 0},
		{"missing TLS 1.2", "m.example.com", nil, "", tls.VersionTLS12},
		{"wrong CA", "m.example.com", other.Client(t, "mallory"), "", 0},
		{"too deep for depth 1", "m.example.com", inter2.Client(t, "carol"), "", 0},
		{"too deep for depth 1, TLS 1.2", "m.example.com", inter2.Client(t, "carol"), "", tls.VersionTLS12},
		{"depth 2 allows two intermediates", "m2.example.com", inter2.Client(t, "carol"), "CN=carol", 0},
		{"depth 0 allows a certificate issued by the CA", "m0.example.com", p.clientRoot.Client(t, "dave"), "CN=dave", 0},
		{"depth 0 refuses an intermediate", "m0.example.com", inter.Client(t, "bob"), "", 0},
		{"expired", "m.example.com", expired, "", 0},
		{"server certificate as client certificate", "m.example.com", p.clientRoot.Server(t, "srv.example.com"), "", 0},
	}
	rejected := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := p.clientConfig(tt.sni)
			cfg.MaxVersion = tt.version
			if tt.leaf != nil {
				cfg.Certificates = []tls.Certificate{tt.leaf.TLS(t)}
			}
			info, _, err := mtlsExchange(t, addr, cfg)
			if tt.want == "" {
				rejected++
				if err == nil {
					t.Fatalf("request to %s with %s succeeded as %q, want the client certificate refused", tt.sni, tt.name, info.ClientSubject)
				}
				return
			}
			if err != nil {
				t.Fatalf("request to %s: %v", tt.sni, err)
			}
			if info.ClientSubject != tt.want {
				t.Errorf("client_subject = %q, want %q", info.ClientSubject, tt.want)
			}
		})
	}
	got := res.wait(t, len(tests))
	if got[HandshakeClientCertRejected] != rejected || got[HandshakeOK] != len(tests)-rejected {
		t.Errorf("OnHandshake results = %v, want %d client_cert_rejected and %d ok", got, rejected, len(tests)-rejected)
	}
}

// TestClientCertificatesOpenSSL checks the alert an OpenSSL client gets
// without a certificate (RFC 8446 certificate_required) and with one.
func TestClientCertificatesOpenSSL(t *testing.T) {
	if testing.Short() {
		t.Skip("runs openssl")
	}
	p := newPKI(t)
	_, addr := serve(t, Options{}, Config{Entities: []Entity{mtlsEntity(t, p, "m", "m.example.com", 0, p.clientRoot)}})
	dir := t.TempDir()
	alice := p.clientRoot.Client(t, "alice")
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, alice.ChainPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, alice.KeyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := openssl(t, addr, "-servername", "m.example.com")
	if err == nil || !strings.Contains(out, "alert certificate required") {
		t.Errorf("openssl without a client certificate: err = %v, want the certificate_required alert in:\n%s", err, out)
	}
	out, err = openssl(t, addr, "-servername", "m.example.com", "-cert", certFile, "-key", keyFile)
	if err != nil || !strings.Contains(out, "CONNECTION ESTABLISHED") {
		t.Errorf("openssl with a client certificate: err = %v, want success in:\n%s", err, out)
	}
}

func TestVerifyConnectionResumedUnderNewCA(t *testing.T) {
	p := newPKI(t)
	other := fixtures.NewRootCA(t, "new client root")
	s := New(Options{})
	if err := s.Apply(Config{Entities: []Entity{mtlsEntity(t, p, "m", "m.example.com", 0, other)}}); err != nil {
		t.Fatal(err)
	}
	snap := s.snap.Load()
	e, err := snap.entry(snap.lookup("m.example.com"))
	if err != nil {
		t.Fatal(err)
	}
	alice := p.clientRoot.Client(t, "alice")
	chain := [][]*x509.Certificate{{alice.Cert, p.clientRoot.Cert}}
	cs := tls.ConnectionState{DidResume: true, PeerCertificates: []*x509.Certificate{alice.Cert}, VerifiedChains: chain}
	if err := e.verifyConnection(cs); !errors.Is(err, ErrClientCertificate) {
		t.Errorf("verifyConnection(session verified under the old CA) = %v, want ErrClientCertificate", err)
	}
	cs.DidResume = false // a fresh handshake's chains were verified by crypto/tls against this very pool
	if err := e.verifyConnection(cs); err != nil {
		t.Errorf("verifyConnection(fresh chain) = %v, want nil", err)
	}
	if err := e.verifyConnection(tls.ConnectionState{}); !errors.Is(err, ErrClientCertificate) {
		t.Errorf("verifyConnection(no certificate) = %v, want ErrClientCertificate", err)
	}
}
