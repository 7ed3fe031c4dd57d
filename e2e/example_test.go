package e2e

import (
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"certops/examples"
)

// exampleCA is the CA of the example repository embedded in the binary.
var exampleCA = filepath.Join("..", "examples", "basic", "ca.pem")

// TestExampleSNI checks with openssl s_client that `certops run` without
// --source picks the example's certificates by SNI as DESIGN.md 3 says:
// exact name, then the one-label wildcard, then the default entity, which
// also answers a ClientHello without SNI.
func TestExampleSNI(t *testing.T) {
	d := startDaemon(t)
	tests := []struct {
		name   string
		args   []string
		wantCN string
	}{
		{"exact name", []string{"-servername", "shop.example.com"}, "shop.example.com"},
		{"exact name in capitals", []string{"-servername", "SHOP.Example.COM"}, "shop.example.com"},
		{"wildcard, one label", []string{"-servername", "cart.example.com"}, "*.example.com"},
		{"wildcard does not cover two labels", []string{"-servername", "a.b.example.com"}, "default.certops.invalid"},
		{"wildcard does not cover its parent", []string{"-servername", "example.com"}, "default.certops.invalid"},
		{"unknown name gets the default", []string{"-servername", "unknown.test"}, "default.certops.invalid"},
		{"no SNI gets the default", []string{"-noservername"}, "default.certops.invalid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := sClient(t, d.listen, append([]string{"-CAfile", exampleCA}, tt.args...)...)
			if !h.ok {
				t.Fatalf("s_client %v: %s", tt.args, h.describe())
			}
			if h.leaf.Subject.CommonName != tt.wantCN {
				t.Errorf("s_client %v: served CN %q, want %q", tt.args, h.leaf.Subject.CommonName, tt.wantCN)
			}
			if h.verify != "0 (ok)" {
				t.Errorf("s_client %v: verify return code %q, want 0 (ok)", tt.args, h.verify)
			}
		})
	}
}

// TestExampleDualChain checks the dual RSA + ECDSA entity api.example.net:
// a client that offers both gets ECDSA (DESIGN.md 3: ECDSA tried before
// RSA, whatever the order in the file: here RSA is first), and a client
// that offers only one algorithm gets that one, in TLS 1.2 (by cipher
// suite) and TLS 1.3 (by signature algorithm).
func TestExampleDualChain(t *testing.T) {
	d := startDaemon(t)
	tests := []struct {
		name    string
		args    []string
		wantAlg x509.PublicKeyAlgorithm
	}{
		{"TLS 1.3 modern client gets ECDSA", []string{"-tls1_3"}, x509.ECDSA},
		{"TLS 1.2 modern client gets ECDSA", []string{"-tls1_2"}, x509.ECDSA},
		{"TLS 1.3 ECDSA-only signature algorithms", []string{"-tls1_3", "-sigalgs", "ecdsa_secp256r1_sha256"}, x509.ECDSA},
		{"TLS 1.3 RSA-only signature algorithms", []string{"-tls1_3", "-sigalgs", "rsa_pss_rsae_sha256:rsa_pss_rsae_sha384"}, x509.RSA},
		{"TLS 1.2 ECDSA-only cipher suite", []string{"-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256"}, x509.ECDSA},
		{"TLS 1.2 RSA-only cipher suite", []string{"-tls1_2", "-cipher", "ECDHE-RSA-AES128-GCM-SHA256"}, x509.RSA},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"-servername", "api.example.net", "-CAfile", exampleCA}, tt.args...)
			h := sClient(t, d.listen, args...)
			if !h.ok {
				t.Fatalf("s_client %v: %s", tt.args, h.describe())
			}
			if h.leaf.PublicKeyAlgorithm != tt.wantAlg {
				t.Errorf("s_client %v: served a %s certificate, want %s", tt.args, h.leaf.PublicKeyAlgorithm, tt.wantAlg)
			}
			if h.verify != "0 (ok)" {
				t.Errorf("s_client %v: verify return code %q, want 0 (ok)", tt.args, h.verify)
			}
		})
	}
}

// TestExampleVersions checks the protocol versions: TLS 1.2 and 1.3 are
// served, TLS 1.1 and 1.0 are refused (DESIGN.md 2: ssl_protocols).
func TestExampleVersions(t *testing.T) {
	d := startDaemon(t)
	tests := []struct {
		flag   string
		want   string // "" means the handshake must fail
		seclvl bool   // lower OpenSSL's own security level so that the client offers the old version at all
	}{
		{"-tls1_3", "TLSv1.3", false},
		{"-tls1_2", "TLSv1.2", false},
		{"-tls1_1", "", true},
		{"-tls1", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.flag, func(t *testing.T) {
			args := []string{"-servername", "shop.example.com", "-CAfile", exampleCA, tt.flag}
			if tt.seclvl {
				args = append(args, "-cipher", "DEFAULT@SECLEVEL=0")
			}
			h := sClient(t, d.listen, args...)
			switch {
			case tt.want == "" && h.ok:
				t.Errorf("s_client %s: %s, want a failed handshake", tt.flag, h.describe())
			case tt.want != "" && !h.ok:
				t.Errorf("s_client %s: %s, want %s", tt.flag, h.describe(), tt.want)
			case tt.want != "" && h.protocol != tt.want:
				t.Errorf("s_client %s: negotiated %s, want %s", tt.flag, h.protocol, tt.want)
			}
		})
	}
}

// TestExampleCurl checks the HTTP side with curl --resolve: the gateway
// answers with a JSON description naming the entity that served the
// connection.
func TestExampleCurl(t *testing.T) {
	d := startDaemon(t)
	tests := []struct {
		host       string
		args       []string
		wantEntity string
		wantProto  string
	}{
		{"shop.example.com", nil, "shop-example-com", "HTTP/2.0"},
		{"cart.example.com", nil, "wildcard-example-com", "HTTP/2.0"},
		{"api.example.net", []string{"--http1.1"}, "api-example-net", "HTTP/1.1"},
	}
	for _, tt := range tests {
		t.Run(tt.host, func(t *testing.T) {
			ci := curl(t, tt.host, d.port, exampleCA, tt.args...).info(t)
			if ci.Entity != tt.wantEntity || ci.SNI != tt.host || ci.Protocol != tt.wantProto {
				t.Errorf("curl https://%s/: entity %q, sni %q, protocol %q; want %q, %q, %q",
					tt.host, ci.Entity, ci.SNI, ci.Protocol, tt.wantEntity, tt.host, tt.wantProto)
			}
		})
	}
}

// TestExampleShortLivedLeaves checks what `certops run` without --source
// serves since issue 16: leaves of the demo CA issued at start, valid for
// 90 days, whose CRL distribution point is the demo CRL on the admin
// listener; the CRL is served, is signed by the demo CA, and openssl
// checks a served leaf against it. Nothing is written to the data dir, and
// a restarted daemon serves new leaves.
func TestExampleShortLivedLeaves(t *testing.T) {
	dataDir := t.TempDir()
	d := startDaemon(t, "--data-dir", dataDir)
	caPEM, err := os.ReadFile(exampleCA)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(caPEM)
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	wantCRL := []string{"http://" + d.admin + examples.CRLPath}
	served := map[string]*x509.Certificate{}
	for _, name := range []string{"shop.example.com", "cart.example.com", "api.example.net", "unknown.test"} {
		h := sClient(t, d.listen, "-servername", name, "-CAfile", exampleCA)
		if !h.ok || h.verify != "0 (ok)" {
			t.Fatalf("s_client -servername %s: %s", name, h.describe())
		}
		served[name] = h.leaf
		if got := h.leaf.NotAfter.Sub(h.leaf.NotBefore); got != 90*24*time.Hour {
			t.Errorf("%s: leaf valid for %s, want 2160h (90 days)", name, got)
		}
		if time.Since(h.leaf.NotBefore) > 2*time.Hour {
			t.Errorf("%s: leaf valid from %s, want issued at start", name, h.leaf.NotBefore)
		}
		if !slices.Equal(h.leaf.CRLDistributionPoints, wantCRL) {
			t.Errorf("%s: CRL distribution points %q, want %q", name, h.leaf.CRLDistributionPoints, wantCRL)
		}
	}

	resp, err := http.Get(wantCRL[0])
	if err != nil {
		t.Fatalf("GET %s: %v", wantCRL[0], err)
	}
	der, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/pkix-crl" {
		t.Fatalf("GET %s = %d %q (%v), want 200 application/pkix-crl", wantCRL[0], resp.StatusCode, resp.Header.Get("Content-Type"), err)
	}
	crl, err := x509.ParseRevocationList(der)
	if err != nil {
		t.Fatalf("the served CRL does not parse: %v", err)
	}
	if err := crl.CheckSignatureFrom(ca); err != nil {
		t.Errorf("the served CRL is not signed by the demo CA: %v", err)
	}
	dir := t.TempDir()
	crlFile, leafFile := filepath.Join(dir, "ca.crl.pem"), filepath.Join(dir, "leaf.pem")
	writeFile(t, dir, "ca.crl.pem", pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: der}))
	writeFile(t, dir, "leaf.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: served["shop.example.com"].Raw}))
	out, err := exec.Command("openssl", "verify", "-crl_check", "-CRLfile", crlFile, "-CAfile", exampleCA, leafFile).CombinedOutput()
	if err != nil || !strings.Contains(string(out), ": OK") {
		t.Errorf("openssl verify -crl_check of the served leaf: %v\n%s", err, out)
	}

	if entries, err := os.ReadDir(dataDir); err != nil || len(entries) > 0 {
		t.Errorf("data dir after serving the embedded example: %d entries (%v), want none", len(entries), err)
	}

	again := startDaemon(t)
	h := sClient(t, again.listen, "-servername", "shop.example.com", "-CAfile", exampleCA)
	if !h.ok {
		t.Fatalf("second daemon: %s", h.describe())
	}
	if h.leaf.SerialNumber.Cmp(served["shop.example.com"].SerialNumber) == 0 {
		t.Errorf("a second start served serial %x again, want a new leaf", h.leaf.SerialNumber)
	}
}
