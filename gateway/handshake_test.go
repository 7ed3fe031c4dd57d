package gateway

import (
	"io"
	"net"
	"strings"
	"testing"
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
