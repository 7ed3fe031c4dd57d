package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"testing"
	"time"
)

// TestRunServesEmbeddedExample runs `certops run` without --source, as the
// README's quick start does, and checks with a real TLS client that every
// example name gets the right certificate.
func TestRunServesEmbeddedExample(t *testing.T) {
	listen, admin := freeAddr(t), freeAddr(t)
	ctx, cancel := context.WithCancel(t.Context())
	var stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- execute(ctx, []string{"run", "--listen", listen, "--admin", admin, "--log-format", "json"}, &bytes.Buffer{}, &stderr)
	}()
	waitReady(t, "http://"+admin+"/readyz")

	caPEM, err := os.ReadFile("examples/basic/ca.pem")
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)

	tests := []struct {
		name       string
		serverName string
		wantCN     string
	}{
		{"exact", "shop.example.com", "shop.example.com"},
		{"wildcard one label", "cart.example.com", "*.example.com"},
		{"dual", "api.example.net", "api.example.net"},
		{"default for unknown name", "unknown.example.org", "default.certops.invalid"},
		{"uppercase", "SHOP.EXAMPLE.COM", "shop.example.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The default certificate is not valid for the names it catches,
			// so verify the chain against the example CA without a host name.
			conn, err := tls.Dial("tcp", listen, &tls.Config{
				ServerName:         tt.serverName,
				InsecureSkipVerify: true,
				VerifyConnection: func(cs tls.ConnectionState) error {
					opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool()}
					_, err := cs.PeerCertificates[0].Verify(opts)
					return err
				},
			})
			if err != nil {
				t.Fatalf("handshake with SNI %q: %v", tt.serverName, err)
			}
			defer conn.Close()
			got := conn.ConnectionState().PeerCertificates[0].Subject.CommonName
			if got != tt.wantCN {
				t.Errorf("SNI %q served CN %q, want %q", tt.serverName, got, tt.wantCN)
			}
		})
	}

	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("run exited %d after cancel, want 0; stderr:\n%s", code, stderr.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not stop after its context ended")
	}
}

func TestEnvFallback(t *testing.T) {
	t.Setenv("CERTOPS_LISTEN", "127.0.0.1:1")
	cmd := newRunCmd()
	if err := cmd.ParseFlags([]string{"--admin", "127.0.0.1:2"}); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CERTOPS_ADMIN", "127.0.0.1:3")
	if err := bindEnv(cmd); err != nil {
		t.Fatal(err)
	}
	if got, _ := cmd.Flags().GetString("listen"); got != "127.0.0.1:1" {
		t.Errorf("listen = %q, want the value of CERTOPS_LISTEN", got)
	}
	if got, _ := cmd.Flags().GetString("admin"); got != "127.0.0.1:2" {
		t.Errorf("admin = %q, want the flag to win over CERTOPS_ADMIN", got)
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not answer 200 within 20s", url)
}
