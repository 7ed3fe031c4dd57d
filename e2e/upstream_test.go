package e2e

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// upstreamSeen is what the upstream reports about a proxied request.
type upstreamSeen struct {
	Host           string `json:"host"`
	ForwardedFor   string `json:"x_forwarded_for"`
	ForwardedHost  string `json:"x_forwarded_host"`
	ForwardedProto string `json:"x_forwarded_proto"`
	ClientSerial   string `json:"client_serial"` // the gateway's client certificate, over https
}

// upstreamHandler answers with what it saw, and closes each connection so
// that the next request makes a new TLS handshake to it.
func upstreamHandler(w http.ResponseWriter, r *http.Request) {
	seen := upstreamSeen{
		Host:           r.Host,
		ForwardedFor:   r.Header.Get("X-Forwarded-For"),
		ForwardedHost:  r.Header.Get("X-Forwarded-Host"),
		ForwardedProto: r.Header.Get("X-Forwarded-Proto"),
	}
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		seen.ClientSerial = fmt.Sprintf("%x", r.TLS.PeerCertificates[0].SerialNumber)
	}
	w.Header().Set("Connection", "close")
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(seen)
}

// TestUpstream checks --upstream (DESIGN.md 3): requests are reverse-proxied
// with X-Forwarded-* set, to a plain HTTP upstream and to an https upstream
// that requires a client certificate, verified with --upstream-ca, where
// the gateway presents the type: client entity named by
// --upstream-client-cert, and presents its successor after a rotation.
func TestUpstream(t *testing.T) {
	requireBinary(t)
	serverCA, upstreamCA, gatewayCA := newCA(t, "gateway server CA"), newCA(t, "upstream server CA"), newCA(t, "gateway client CA")
	files := t.TempDir()
	writeFile(t, files, "server-ca.pem", serverCA.certPEM)
	writeFile(t, files, "upstream-ca.pem", upstreamCA.certPEM)
	caFile := filepath.Join(files, "server-ca.pem")

	repo := t.TempDir()
	writeFile(t, repo, "shop.yaml", entity{name: "shop", snis: []string{"shop.test"}, chains: []*testLeaf{serverCA.issue(t, algECDSA, "shop.test", []string{"shop.test"})}}.yaml())
	writeClient := func() *testLeaf {
		leaf := gatewayCA.issue(t, algECDSA, "gateway client", nil, leafOptions{client: true})
		doc := entity{name: "upstream-client", chains: []*testLeaf{leaf}, extra: "type: client\n"}.yaml()
		tmp := filepath.Join(repo, ".client.tmp")
		if err := os.WriteFile(tmp, doc, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(repo, "client.yaml")); err != nil {
			t.Fatal(err)
		}
		return leaf
	}
	client := writeClient()

	get := func(t *testing.T, d *daemon) upstreamSeen {
		t.Helper()
		r := curl(t, "shop.test", d.port, caFile)
		var seen upstreamSeen
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &seen) != nil {
			t.Fatalf("curl through the gateway: exit %d, answer %q, stderr %q; want the upstream's JSON", r.code, r.stdout, r.stderr)
		}
		return seen
	}

	t.Run("http", func(t *testing.T) {
		up := httptest.NewServer(http.HandlerFunc(upstreamHandler))
		defer up.Close()
		d := startDaemon(t, "--source", repo, "--upstream", up.URL)
		seen := get(t, d)
		if seen.ForwardedProto != "https" || seen.ForwardedHost != fmt.Sprintf("shop.test:%d", d.port) || seen.ForwardedFor != "127.0.0.1" {
			t.Errorf("upstream saw %+v; want X-Forwarded-Proto https, X-Forwarded-Host shop.test:%d, X-Forwarded-For 127.0.0.1", seen, d.port)
		}
	})

	t.Run("https with client certificate", func(t *testing.T) {
		up := httptest.NewUnstartedServer(http.HandlerFunc(upstreamHandler))
		upLeaf := upstreamCA.issue(t, algECDSA, "upstream", nil, leafOptions{ips: []net.IP{net.IPv4(127, 0, 0, 1)}})
		upCert, err := tls.X509KeyPair(upLeaf.certPEM, upLeaf.keyPEM)
		if err != nil {
			t.Fatal(err)
		}
		up.TLS = &tls.Config{Certificates: []tls.Certificate{upCert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool(gatewayCA)}
		up.StartTLS()
		defer up.Close()
		d := startDaemon(t, "--source", repo, "--upstream", up.URL,
			"--upstream-ca", filepath.Join(files, "upstream-ca.pem"), "--upstream-client-cert", "upstream-client")
		if seen := get(t, d); seen.ClientSerial != fmt.Sprintf("%x", client.cert.SerialNumber) {
			t.Fatalf("upstream saw client certificate %q, want serial %x", seen.ClientSerial, client.cert.SerialNumber)
		}
		next := writeClient()
		want := fmt.Sprintf("%x", next.cert.SerialNumber)
		eventually(t, 60*time.Second, "the upstream sees the rotated client certificate", func() (bool, string) {
			seen := get(t, d)
			return seen.ClientSerial == want, "serial " + seen.ClientSerial
		})
	})
}
