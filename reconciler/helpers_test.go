package reconciler

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"certops/fixtures"
	"certops/gateway"
	"certops/schema"
)

// testGateway is a real gateway.Server listening on 127.0.0.1.
type testGateway struct {
	*gateway.Server
	addr string
	ca   *fixtures.CA
}

func startGateway(tb testing.TB, ca *fixtures.CA) *testGateway {
	tb.Helper()
	gw := gateway.New(gateway.Options{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { gw.Serve(ctx, ln) })
	tb.Cleanup(func() { cancel(); wg.Wait() })
	return &testGateway{Server: gw, addr: ln.Addr().String(), ca: ca}
}

// served returns the leaf the gateway serves for sni, verified by a real
// crypto/tls client against the test CA, or an error.
func (g *testGateway) served(sni string) (*x509.Certificate, error) {
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: &tls.Config{
		ServerName: sni,
		RootCAs:    fixtures.Pool(g.ca),
	}}
	c, err := d.DialContext(context.Background(), "tcp", g.addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState().PeerCertificates[0], nil
}

// wantServed fails the test unless the gateway serves leaf for sni.
func (g *testGateway) wantServed(tb testing.TB, sni string, leaf *fixtures.Leaf) {
	tb.Helper()
	got, err := g.served(sni)
	if err != nil {
		tb.Fatalf("handshake for %s: %v, want serial %x", sni, err, leaf.Cert.SerialNumber)
	}
	if got.SerialNumber.Cmp(leaf.Cert.SerialNumber) != 0 {
		tb.Fatalf("served for %s: serial %x, want %x", sni, got.SerialNumber, leaf.Cert.SerialNumber)
	}
}

// wantRefused fails the test if the gateway completes a handshake for sni.
func (g *testGateway) wantRefused(tb testing.TB, sni string) {
	tb.Helper()
	if got, err := g.served(sni); err == nil {
		tb.Fatalf("served %s with serial %x, want a refused handshake", sni, got.SerialNumber)
	}
}

// entity renders an entity file for name with a fresh leaf for its SNIs.
func entity(tb testing.TB, ca *fixtures.CA, name string, snis ...string) (string, *fixtures.Leaf) {
	tb.Helper()
	leaf := ca.Server(tb, snis...)
	return fixtures.EntityYAML(fixtures.Entity{Name: name, SNIs: snis, Chains: []*fixtures.Leaf{leaf}}), leaf
}

// wantResult fails the test unless att has the result.
func wantResult(tb testing.TB, att *Attempt, result Result) {
	tb.Helper()
	if att == nil {
		tb.Fatalf("attempt = nil, want %s", result)
	}
	if att.Result != result {
		tb.Fatalf("attempt result = %s, want %s; errors: %v", att.Result, result, att.Errors)
	}
}

// reconcileNow runs one reconcile and returns its attempt.
func reconcileNow(tb testing.TB, r *Reconciler) *Attempt {
	tb.Helper()
	att, err := r.ReconcileNow(tb.Context())
	if err != nil {
		tb.Fatalf("ReconcileNow: %v", err)
	}
	return att
}

// noPrivateKey fails the test if s holds any private key material of the
// leaves (fixtures' leak scanner).
func noPrivateKey(tb testing.TB, what, s string, leaves ...*fixtures.Leaf) {
	tb.Helper()
	if found := fixtures.LeafScanner(leaves...).Find(s); found != "" {
		tb.Fatalf("%s holds %s", what, found)
	}
}

func problemsText(ps schema.ErrorList) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintln(&b, p.Error())
	}
	return b.String()
}
