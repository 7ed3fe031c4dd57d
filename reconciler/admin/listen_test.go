package admin

import (
	"bytes"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// dialHeld dials ln's address and reports whether the server keeps the
// connection (no EOF within wait) or closes it at once.
func dialHeld(tb testing.TB, addr string, wait time.Duration) (net.Conn, bool) {
	tb.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatalf("dial %s: %v", addr, err)
	}
	c.SetReadDeadline(time.Now().Add(wait))
	_, err = c.Read(make([]byte, 1))
	var ne net.Error
	held := errors.As(err, &ne) && ne.Timeout()
	c.SetReadDeadline(time.Time{})
	return c, held
}

func TestLimitListener(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	ln := LimitListener(inner, 2, "admin", slog.New(slog.NewJSONHandler(&logs, nil))).(*limitListener)
	defer ln.Close()
	// The server side: hold every accepted connection until the test ends.
	accepted := make(chan net.Conn, 10)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				close(accepted)
				return
			}
			accepted <- c
		}
	}()
	addr := ln.Addr().String()
	const wait = 300 * time.Millisecond

	for i := range 2 {
		c, ok := dialHeld(t, addr, wait)
		defer c.Close()
		if !ok {
			t.Fatalf("connection %d of 2 (the cap) was closed, want held", i+1)
		}
	}
	for i := range 5 {
		c, ok := dialHeld(t, addr, wait)
		c.Close()
		if ok {
			t.Fatalf("connection %d over the cap was held, want closed at once", i+1)
		}
	}
	if got := ln.refusals.Load(); got != 5 {
		t.Errorf("refusals = %d, want 5", got)
	}
	if got := strings.Count(logs.String(), "listener full"); got != 1 {
		t.Errorf("%d log lines for 5 refusals within %v, want 1:\n%s", got, RefusalLogInterval, logs.String())
	}

	// Closing a held connection on the server side frees its slot.
	srvConn := <-accepted
	srvConn.Close()
	srvConn.Close() // a second Close must not free a second slot
	c, ok := dialHeld(t, addr, wait)
	defer c.Close()
	if !ok {
		t.Fatal("a connection after one was closed was refused, want held")
	}
	c2, ok := dialHeld(t, addr, wait)
	c2.Close()
	if ok {
		t.Fatal("a second Close freed a second slot: 3 connections held with a cap of 2")
	}
}

func TestLimitListenerLogsEveryInterval(t *testing.T) {
	var logs bytes.Buffer
	now := time.Unix(1_700_000_000, 0)
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer inner.Close()
	l := LimitListener(inner, 1, "webhook", slog.New(slog.NewJSONHandler(&logs, nil))).(*limitListener)
	l.now = func() time.Time { return now }
	for range 3 {
		l.refuse()
	}
	now = now.Add(RefusalLogInterval)
	for range 4 {
		l.refuse()
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d log lines over two intervals, want 2:\n%s", len(lines), logs.String())
	}
	// The second line counts what the first interval refused after its
	// log line, and the one that opened the second interval.
	if !strings.Contains(lines[0], `"refused":1`) || !strings.Contains(lines[1], `"refused":3`) {
		t.Errorf("refusal counts: %s", logs.String())
	}
}

func TestNewHTTPServerTimeouts(t *testing.T) {
	srv := NewHTTPServer(http.NotFoundHandler(), nil)
	for name, d := range map[string]time.Duration{
		"ReadHeaderTimeout": srv.ReadHeaderTimeout,
		"ReadTimeout":       srv.ReadTimeout,
		"WriteTimeout":      srv.WriteTimeout,
		"IdleTimeout":       srv.IdleTimeout,
	} {
		if d <= 0 || d > time.Minute {
			t.Errorf("NewHTTPServer: %s = %v, want between 0 and 1m", name, d)
		}
	}
}

// TestPartialBodyClosed sends half a webhook body and stops: the server
// must close the connection after its read timeout instead of holding it.
func TestPartialBodyClosed(t *testing.T) {
	s := New(Options{Reconciler: &fakeRec{}, WebhookSecret: []byte(testSecret)})
	srv := NewHTTPServer(s.WebhookHandler(), nil)
	srv.ReadTimeout = 300 * time.Millisecond // the real one is 30s
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "POST /hooks/generic HTTP/1.1\r\nHost: x\r\nX-Signature-256: "+sign("{}")+"\r\nContent-Length: 1000\r\n\r\n{")
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err = io.ReadAll(c)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatal("a connection with a stalled body was still open after 10s")
	}
}

func TestDefaultMaxConns(t *testing.T) {
	n := DefaultMaxConns()
	if n < minConns || n > maxConns || n > max(fileLimit()/4, minConns) {
		t.Errorf("DefaultMaxConns() = %d with a file limit of %d, want %d..%d and well below the limit", n, fileLimit(), minConns, maxConns)
	}
}
