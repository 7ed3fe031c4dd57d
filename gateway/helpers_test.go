package gateway

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"certops/fixtures"
)

// pki is the test material shared by the tests of this package: one root
// CA for servers and one for clients.
type pki struct {
	root, clientRoot *fixtures.CA
	roots            *x509.CertPool // trusts root
}

func newPKI(tb testing.TB) *pki {
	tb.Helper()
	root := fixtures.NewRootCA(tb, "gateway test server root")
	return &pki{
		root:       root,
		clientRoot: fixtures.NewRootCA(tb, "gateway test client root"),
		roots:      fixtures.Pool(root),
	}
}

// entity returns a server entity with one ECDSA chain for its SNIs (the
// certificate names them, wildcards and "*" left out).
func (p *pki) entity(tb testing.TB, name string, snis ...string) Entity {
	tb.Helper()
	var dns []string
	for _, s := range snis {
		if s != "*" {
			dns = append(dns, s)
		}
	}
	if len(dns) == 0 {
		dns = []string{name + ".test"}
	}
	leaf := p.root.Leaf(tb, fixtures.LeafOptions{DNSNames: dns, CommonName: name})
	return Entity{Name: name, SNIs: snis, Chains: []tls.Certificate{leaf.TLS(tb)}}
}

// serve starts a Server with opts and cfg on a loopback listener and
// returns it with its address. The server stops when the test ends.
func serve(tb testing.TB, opts Options, cfg Config) (*Server, string) {
	tb.Helper()
	return serveWith(tb, New(opts), cfg)
}

// serveWith applies cfg to s and serves it on a loopback listener until the
// test ends, returning s and its address.
func serveWith(tb testing.TB, s *Server, cfg Config) (*Server, string) {
	tb.Helper()
	if err := s.Apply(cfg); err != nil {
		tb.Fatalf("Apply: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	tb.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			tb.Errorf("Serve: %v", err)
		}
	})
	return s, ln.Addr().String()
}

// handshake dials addr and completes a TLS handshake with cfg.
func handshake(addr string, cfg *tls.Config) (*tls.Conn, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return nil, err
	}
	return conn, nil
}

// clientConfig trusts the test server root and names serverName.
func (p *pki) clientConfig(serverName string) *tls.Config {
	return &tls.Config{ServerName: serverName, RootCAs: p.roots}
}

// get sends one HTTP/1.1 request for host over conn and decodes the
// gateway's JSON answer. It returns the status code too.
func get(tb testing.TB, conn *tls.Conn, host string) (int, ConnectionInfo) {
	tb.Helper()
	status, body, err := request(conn, host)
	if err != nil {
		tb.Fatalf("GET https://%s/: %v", host, err)
	}
	var info ConnectionInfo
	if status == http.StatusOK {
		if err := json.Unmarshal(body, &info); err != nil {
			tb.Fatalf("GET https://%s/: decode %q: %v", host, body, err)
		}
	}
	return status, info
}

// request is get without the test helper, for use from goroutines.
func request(conn *tls.Conn, host string) (int, []byte, error) {
	if err := conn.SetDeadline(time.Now().Add(10 * time.Second)); err != nil {
		return 0, nil, err
	}
	defer conn.SetDeadline(time.Time{})
	if _, err := fmt.Fprintf(conn, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", host); err != nil {
		return 0, nil, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, body, err
}

// results counts OnHandshake calls.
type results struct {
	mu sync.Mutex
	n  map[HandshakeResult]int
}

func (r *results) record(h HandshakeResult) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.n == nil {
		r.n = make(map[HandshakeResult]int)
	}
	r.n[h]++
}

// wait returns the count of h once the total reaches total, since the
// server reports a handshake after the client has seen its end.
func (r *results) wait(tb testing.TB, total int) map[HandshakeResult]int {
	tb.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r.mu.Lock()
		sum := 0
		for _, v := range r.n {
			sum += v
		}
		out := make(map[HandshakeResult]int, len(r.n))
		for k, v := range r.n {
			out[k] = v
		}
		r.mu.Unlock()
		if sum >= total {
			return out
		}
		if time.Now().After(deadline) {
			tb.Fatalf("OnHandshake called %d times, want %d: %v", sum, total, out)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// isAlert reports whether err is the client's view of a TLS alert whose
// text contains want (crypto/tls words alerts as "remote error: tls: ...").
func isAlert(err error, want string) bool {
	var ae tls.AlertError
	if errors.As(err, &ae) {
		return ae.Error() == want
	}
	return err != nil && strings.Contains(err.Error(), "remote error: tls: "+want)
}

func decodeInfo(body []byte, info *ConnectionInfo) error {
	return json.Unmarshal(body, info)
}
