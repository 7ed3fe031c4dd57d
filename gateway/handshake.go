package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	stdlog "log"
	"log/slog"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// trackedConn is the net.Conn under each tls.Conn the gateway serves. The
// TLS callbacks record on it what they decided, so that the handshake
// result can be classified and the HTTP side knows which entity the
// handshake chose, without looking the name up again. Its fields are
// written during the handshake and only read after it.
//
// It also sees the end of the handshake, which net/http performs (see
// handshakeListener): its deadline methods bound the handshake and notice
// its success, its Close notices a failure.
type trackedConn struct {
	net.Conn
	entry  *entry // the entity chosen by configForClient
	noCert bool   // no entity for the server name and no default
	noFit  bool   // the entity has no chain the client supports

	ln    *handshakeListener
	tls   *tls.Conn    // the connection served over this one
	state atomic.Int32 // connPending from Accept until its handshake is observed
}

// States of a trackedConn.
const (
	connObserved int32 = iota // observe was called, or the conn is not a handshakeListener's
	connPending               // accepted, handshake not observed yet
)

// configForClient picks the entity for a ClientHello from the current
// snapshot and returns its tls.Config. An unknown name with no default
// entity gets a config without certificates, which crypto/tls answers with
// the unrecognized_name alert (RFC 6066 section 3).
func (s *Server) configForClient(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	tc, _ := hello.Conn.(*trackedConn)
	snap := s.snap.Load()
	i := snap.lookup(hello.ServerName)
	if i < 0 {
		if tc != nil {
			tc.noCert = true
		}
		return noCertificate, nil
	}
	e, err := snap.entry(i)
	if err != nil {
		s.log.Error("cannot serve entity", "entity", snap.entityName(i), "err", err)
		return nil, err
	}
	if tc != nil {
		tc.entry = e
	}
	return e.config, nil
}

// noCertificate has neither Certificates nor GetCertificate, so crypto/tls
// fails the handshake with the unrecognized_name alert.
var noCertificate = &tls.Config{MinVersion: tls.VersionTLS12, CipherSuites: DefaultTLS12CipherSuites(), SessionTicketsDisabled: true}

// handshakeTimeout bounds a TLS handshake, so a client that opens a
// connection and says nothing holds it for at most this long.
const handshakeTimeout = 10 * time.Second

// handshakeListener accepts TCP connections and returns each as a
// *tls.Conn over a trackedConn, its handshake not done: the http.Server
// does the handshake in its own connection goroutine, one goroutine per
// connection. (Doing the handshake in a goroutine of ours and handing the
// conn to net/http's accept loop cost two more goroutine wake-ups and a
// move between cores per connection: ~6% of a handshake's CPU.)
//
// The gateway still observes and classifies every handshake outcome
// (Options.OnHandshake), failures included, exactly once, through what
// net/http's (*conn).serve does to the trackedConn; TestNetHTTPHandshake
// pins it for the Go release we build with:
//
//   - It sets a read and a write deadline before the handshake, when its
//     TLS handshake timeout (the least non-zero of ReadHeaderTimeout,
//     ReadTimeout and WriteTimeout; New sets ReadHeaderTimeout) is
//     positive. While the handshake is pending, trackedConn moves those
//     deadlines no later than Server.handshakeTimeout from then, so the
//     gateway's own bound holds whatever net/http's timeouts are.
//   - It lifts both deadlines right after a successful handshake, and only
//     then. The first zero read deadline of a pending trackedConn is
//     therefore the success, seen in net/http's goroutine as soon as the
//     handshake is done, also for a client that never sends a request.
//     crypto/tls sets no deadline during a handshake (only its
//     close_notify sets write deadlines).
//   - After a failed handshake it closes the connection (after writing its
//     400 answer to a plain-HTTP client). trackedConn.Close closes the
//     socket first and then asks the tls.Conn for the handshake's result:
//     crypto/tls keeps a failed handshake's error and Handshake returns it
//     again, and with the socket closed neither a handshake still in
//     flight nor one that never started can block on the peer.
//
// Close of the listener (Server.Shutdown, http.Server.Close) closes the
// connections whose handshake is pending, so handshakes in flight end at
// once, counted as failures, as with a listener that did them itself.
type handshakeListener struct {
	net.Listener
	srv *Server

	mu      sync.Mutex                // guards pending, closed
	pending map[*trackedConn]struct{} // accepted, handshake not observed
	closed  bool
}

func newHandshakeListener(inner net.Listener, srv *Server) *handshakeListener {
	return &handshakeListener{Listener: inner, srv: srv, pending: make(map[*trackedConn]struct{})}
}

// Accept returns the next connection as a *tls.Conn whose handshake is
// yet to be done. Errors of the underlying listener are returned as they
// are: http.Server retries temporary ones (EMFILE) with a backoff.
func (l *handshakeListener) Accept() (net.Conn, error) {
	raw, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: raw, ln: l}
	tc.tls = tls.Server(tc, l.srv.base)
	tc.state.Store(connPending)
	l.mu.Lock()
	closed := l.closed
	if !closed {
		l.pending[tc] = struct{}{}
	}
	l.mu.Unlock()
	if closed {
		_ = tc.Close() // observed as a failed handshake, as before Close
		return nil, net.ErrClosed
	}
	return tc.tls, nil
}

// Close stops accepting, closes the underlying listener and the
// connections whose handshake is pending, which ends their handshakes.
// Established connections are not touched.
func (l *handshakeListener) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return nil
	}
	l.closed = true
	pending := l.pending
	l.pending = nil
	l.mu.Unlock()
	err := l.Listener.Close()
	for tc := range pending {
		_ = tc.Close()
	}
	return err
}

// done observes the connection's handshake once: the first caller wins.
func (c *trackedConn) done() {
	if !c.state.CompareAndSwap(connPending, connObserved) {
		return
	}
	c.ln.mu.Lock()
	delete(c.ln.pending, c)
	c.ln.mu.Unlock()
	// Without a lock held: a handshake that succeeded returns nil at once
	// (an atomic load), a failed one its kept error.
	c.ln.srv.observe(c, c.tls, c.tls.Handshake())
}

// handshakeDeadline returns the deadline to set instead of t, observing
// the handshake when t lifts the read deadline of a pending connection.
func (c *trackedConn) handshakeDeadline(t time.Time, read bool) time.Time {
	if c.state.Load() != connPending {
		return t
	}
	if t.IsZero() {
		if read {
			c.done()
		}
		return t
	}
	if read {
		// net/http's deadline before the handshake, in the goroutine
		// that will do it, and the first call it makes to us there.
		growStack(0)
	}
	if limit := time.Now().Add(c.ln.srv.handshakeTimeout); limit.Before(t) {
		return limit
	}
	return t
}

func (c *trackedConn) SetDeadline(t time.Time) error {
	return c.Conn.SetDeadline(c.handshakeDeadline(t, true))
}

func (c *trackedConn) SetReadDeadline(t time.Time) error {
	return c.Conn.SetReadDeadline(c.handshakeDeadline(t, true))
}

func (c *trackedConn) SetWriteDeadline(t time.Time) error {
	return c.Conn.SetWriteDeadline(c.handshakeDeadline(t, false))
}

// Close closes the connection and, if its handshake was not observed yet,
// observes it: closed first, so that asking for its result cannot block.
func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	if c.state.Load() == connPending {
		c.done()
	}
	return err
}

// httpErrorLog is the http.Server's ErrorLog: its lines go to the
// gateway's logger at Debug level, except the "TLS handshake error" ones,
// since the gateway logs every handshake itself, classified (observe).
func httpErrorLog(log *slog.Logger) *stdlog.Logger {
	return stdlog.New(httpLogWriter{log}, "", 0)
}

type httpLogWriter struct{ log *slog.Logger }

func (w httpLogWriter) Write(p []byte) (int, error) {
	if msg := strings.TrimSuffix(string(p), "\n"); !strings.HasPrefix(msg, "http: TLS handshake error") {
		w.log.Debug(msg)
	}
	return len(p), nil
}

// observe classifies a finished handshake, reports it to OnHandshake and
// logs it at Debug level.
func (s *Server) observe(tc *trackedConn, conn *tls.Conn, err error) {
	result := classify(tc, err)
	if s.onHandshake != nil {
		s.onHandshake(result)
	}
	if !s.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	cs := conn.ConnectionState()
	attrs := []any{"remote_addr", tc.RemoteAddr().String(), "server_name", cs.ServerName, "result", result.String()}
	if tc.entry != nil {
		attrs = append(attrs, "entity", tc.entry.name)
	}
	if err != nil {
		attrs = append(attrs, "err", err)
	} else {
		attrs = append(attrs, "tls_version", tls.VersionName(cs.Version), "resumed", cs.DidResume)
	}
	s.log.Debug("tls handshake", attrs...)
}

// classify maps a handshake outcome to its HandshakeResult.
func classify(tc *trackedConn, err error) HandshakeResult {
	if err == nil {
		return HandshakeOK
	}
	if tc.noCert {
		return HandshakeNoCertificate
	}
	var verr *tls.CertificateVerificationError
	var uerr x509.UnknownAuthorityError
	if tc.entry != nil && tc.entry.mtls && (errors.Is(err, ErrClientCertificate) || errors.As(err, &verr) ||
		errors.As(err, &uerr) || err.Error() == "tls: client didn't provide a certificate") {
		return HandshakeClientCertRejected
	}
	if tc.noFit {
		return HandshakeProtocol
	}
	var rerr tls.RecordHeaderError
	if errors.As(err, &rerr) {
		return HandshakeProtocol
	}
	msg := err.Error()
	for _, p := range protocolErrors {
		if strings.Contains(msg, p) {
			return HandshakeProtocol
		}
	}
	return HandshakeOther
}

// protocolErrors are the texts of crypto/tls's negotiation failures, which
// it does not export as values. TestHandshakeResults pins them.
var protocolErrors = []string{
	"tls: client offered only unsupported versions",
	"tls: unsupported SSLv2 handshake received",
	"tls: no cipher suite supported by both client and server",
	"tls: no ECDHE curve supported by both client and server",
	"tls: client requested unsupported application protocols",
	"doesn't support any of the certificate's signature algorithms",
	"tls: client using inappropriate protocol fallback",
}
