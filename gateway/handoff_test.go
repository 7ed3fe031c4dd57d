package gateway

import (
	"context"
	"crypto/tls"
	"log"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"certops/fixtures"
)

// deadlineConn records what net/http does to the net.Conn under a
// tls.Conn it serves: deadlines set and lifted, and Close.
type deadlineConn struct {
	net.Conn
	tls *tls.Conn

	mu     sync.Mutex
	events []string
	closed chan struct{}
	once   sync.Once
}

func (c *deadlineConn) record(ev string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, ev)
}

func (c *deadlineConn) deadline(kind string, t time.Time) {
	switch {
	case !t.IsZero():
		c.record(kind + " deadline")
	case c.tls.ConnectionState().HandshakeComplete:
		c.record(kind + " lifted after the handshake")
	default:
		c.record(kind + " lifted before the handshake")
	}
}

func (c *deadlineConn) SetDeadline(t time.Time) error {
	c.deadline("read+write", t)
	return c.Conn.SetDeadline(t)
}

func (c *deadlineConn) SetReadDeadline(t time.Time) error {
	c.deadline("read", t)
	return c.Conn.SetReadDeadline(t)
}

func (c *deadlineConn) SetWriteDeadline(t time.Time) error {
	c.deadline("write", t)
	return c.Conn.SetWriteDeadline(t)
}

func (c *deadlineConn) Close() error {
	c.record("close")
	c.once.Do(func() { close(c.closed) })
	return c.Conn.Close()
}

func (c *deadlineConn) recorded() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.events)
}

// deadlineListener serves tls.Conns over deadlineConns.
type deadlineListener struct {
	net.Listener
	cfg   *tls.Config
	conns chan *deadlineConn
}

func (l *deadlineListener) Accept() (net.Conn, error) {
	raw, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	c := &deadlineConn{Conn: raw, closed: make(chan struct{})}
	c.tls = tls.Server(c, l.cfg)
	l.conns <- c
	return c.tls, nil
}

// TestNetHTTPHandshake pins what handshakeListener relies on in net/http's
// (*conn).serve and crypto/tls, as a plain http.Server does it: with a
// positive TLS handshake timeout, a read and a write deadline are set
// before the handshake and lifted right after a successful one, read
// first, also when the client sends no request; a failed handshake lifts
// nothing and ends with Close; and Handshake called again returns the
// failed handshake's error, which net/http logged.
func TestNetHTTPHandshake(t *testing.T) {
	p := newPKI(t)
	ent := p.entity(t, "a", "a.example.com")
	for _, tc := range []struct {
		name string
		cfg  *tls.Config
		ok   bool
	}{
		{"success", &tls.Config{Certificates: ent.Chains}, true},
		{"failure", &tls.Config{}, false}, // no certificate: unrecognized_name
	} {
		t.Run(tc.name, func(t *testing.T) {
			inner, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ln := &deadlineListener{Listener: inner, cfg: tc.cfg, conns: make(chan *deadlineConn, 1)}
			var logs fixtures.SyncBuffer
			srv := &http.Server{
				Handler:           http.NotFoundHandler(),
				ReadHeaderTimeout: time.Minute, // what makes the TLS handshake timeout positive
				ErrorLog:          log.New(&logs, "", 0),
			}
			go srv.Serve(ln)
			t.Cleanup(func() { srv.Close() })

			client, err := handshake(inner.Addr().String(), p.clientConfig("a.example.com"))
			if tc.ok != (err == nil) {
				t.Fatalf("client handshake: %v, want success %v", err, tc.ok)
			}
			if client != nil {
				defer client.Close() // no request: the connection stays open
			}
			c := <-ln.conns
			want := []string{"read deadline", "write deadline", "read lifted after the handshake", "write lifted after the handshake"}
			if !tc.ok {
				want = []string{"read deadline", "write deadline", "close"}
				<-c.closed
			}
			deadline := time.Now().Add(10 * time.Second)
			for len(c.recorded()) < len(want) && time.Now().Before(deadline) {
				time.Sleep(time.Millisecond)
			}
			// What follows (the ReadHeaderTimeout deadline) is HTTP's.
			if got := c.recorded(); !slices.Equal(got[:min(len(got), len(want))], want) {
				t.Errorf("net/http on the conn under a tls.Conn: %q, want %q", got, want)
			}
			if tc.ok {
				return
			}
			err = c.tls.Handshake()
			if err == nil {
				t.Fatalf("Handshake after a failed handshake = nil, want its error")
			}
			for time.Now().Before(deadline) && !strings.Contains(logs.String(), "TLS handshake error") {
				time.Sleep(time.Millisecond)
			}
			if !strings.Contains(logs.String(), "TLS handshake error") || !strings.HasSuffix(strings.TrimSpace(logs.String()), err.Error()) {
				t.Errorf("Handshake after a failed handshake = %q; net/http logged %q", err, logs.String())
			}
		})
	}
}

// TestHandshakeObserved checks the gateway's side of the hand-off: a
// handshake is observed as soon as it is done, although the client sends
// no request and keeps the connection; a failure is observed once, logged
// once at Debug by the gateway and not by net/http; and Shutdown ends a
// handshake in flight at once, counted as a failure.
func TestHandshakeObserved(t *testing.T) {
	p := newPKI(t)
	var res results
	var logs fixtures.SyncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, addr := serve(t, Options{OnHandshake: res.record, Logger: logger}, Config{Entities: []Entity{p.entity(t, "a", "a.example.com")}})

	idle, err := handshake(addr, p.clientConfig("a.example.com"))
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	if got := res.wait(t, 1); got[HandshakeOK] != 1 {
		t.Errorf("a handshake without a request counted as %v, want ok", got)
	}

	if _, err := handshake(addr, p.clientConfig("unknown.example.com")); err == nil {
		t.Fatal("handshake for an unknown name succeeded")
	}
	if got := res.wait(t, 2); got[HandshakeNoCertificate] != 1 {
		t.Errorf("an unknown name counted as %v, want no_certificate", got)
	}
	time.Sleep(50 * time.Millisecond) // nothing more may come
	if got := res.wait(t, 2); len(got) != 2 || got[HandshakeOK]+got[HandshakeNoCertificate] != 2 {
		t.Errorf("results %v, want one ok and one no_certificate", got)
	}
	text := logs.String()
	if n := strings.Count(text, `msg="tls handshake"`); n != 2 {
		t.Errorf("%d gateway handshake log lines, want 2:\n%s", n, text)
	}
	if strings.Contains(text, "TLS handshake error") {
		t.Errorf("net/http's handshake error reached the log:\n%s", text)
	}

	silent, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	// The server has accepted it once a handshake after it completes.
	if c, err := handshake(addr, p.clientConfig("a.example.com")); err == nil {
		c.Close()
	}
	res.wait(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	begin := time.Now()
	go s.Shutdown(ctx)
	got := res.wait(t, 4)
	if took := time.Since(begin); took > 3*time.Second {
		t.Errorf("Shutdown ended a pending handshake after %v, want at once", took)
	}
	if got[HandshakeOther] != 1 {
		t.Errorf("a handshake ended by Shutdown counted as %v, want other", got)
	}
	_ = silent.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := silent.Read(make([]byte, 1)); err == nil || isTimeout(err) {
		t.Errorf("silent client after Shutdown: Read = %v, want the connection closed", err)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
