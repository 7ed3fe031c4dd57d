package gateway

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// TestHandshakeResultsOther covers the outcomes no TLS client produces on
// purpose: plain HTTP on the TLS port, and a connection closed before its
// ClientHello. The other results are counted by the tests of their
// features (SNI, versions, dual certificates, mTLS).
func TestHandshakeResultsOther(t *testing.T) {
	p := newPKI(t)
	var res results
	_, addr := serve(t, Options{OnHandshake: res.record}, Config{Entities: []Entity{p.entity(t, "a", "a.example.com")}})
	plain, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := plain.Write([]byte("GET / HTTP/1.1\r\nHost: a.example.com\r\n\r\n")); err != nil {
		t.Fatal(err)
	}
	answer, _ := io.ReadAll(plain)
	plain.Close()
	if !strings.HasPrefix(string(answer), "HTTP/1.0 400 Bad Request") {
		t.Errorf("plain HTTP on the TLS port answered %q, want 400 Bad Request", answer)
	}
	got := res.wait(t, 1)
	if got[HandshakeProtocol] != 1 {
		t.Errorf("plain HTTP on the TLS port counted as %v, want protocol", got)
	}
	closed, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	got = res.wait(t, 2)
	if got[HandshakeOther] != 1 {
		t.Errorf("a connection closed before its ClientHello counted as %v, want other", got)
	}
}

// serveTimeout is serve with a shorter handshake timeout.
func serveTimeout(tb testing.TB, opts Options, cfg Config, timeout time.Duration) string {
	tb.Helper()
	s := New(opts)
	s.handshakeTimeout = timeout
	_, addr := serveWith(tb, s, cfg)
	return addr
}

// TestHandshakeTimeout checks both sides of the handshake deadline: a
// client that connects and says nothing is dropped once it passes, and a
// connection whose handshake finished keeps no deadline from it. Real
// sockets and their deadlines run on the real clock, so the test waits
// past a short timeout instead of using testing/synctest.
func TestHandshakeTimeout(t *testing.T) {
	const timeout = 150 * time.Millisecond
	p := newPKI(t)
	var res results
	addr := serveTimeout(t, Options{OnHandshake: res.record}, Config{Entities: []Entity{p.entity(t, "a", "a.example.com")}}, timeout)

	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	_ = silent.SetReadDeadline(time.Now().Add(10 * time.Second))
	begin := time.Now()
	if n, err := silent.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("silent client: Read = %d, %v; want the server to close the connection", n, err)
	}
	if waited := time.Since(begin); waited < timeout/2 {
		t.Errorf("silent client dropped after %v, want about %v", waited, timeout)
	}
	if got := res.wait(t, 1); got[HandshakeOther] != 1 {
		t.Errorf("a client silent past the timeout counted as %v, want other", got)
	}

	conn, err := handshake(addr, p.clientConfig("a.example.com"))
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	defer conn.Close()
	time.Sleep(3 * timeout)
	if status, info := get(t, conn, "a.example.com"); status != http.StatusOK || info.Entity != "a" {
		t.Errorf("request %v after the handshake = %d, entity %q; want 200 from a", 3*timeout, status, info.Entity)
	}
}
