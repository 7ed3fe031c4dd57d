package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"
)

// trackedConn is the net.Conn under each tls.Conn the gateway serves. The
// TLS callbacks record on it what they decided, so that the handshake
// result can be classified and the HTTP side knows which entity the
// handshake chose, without looking the name up again. Its fields are
// written during the handshake and only read after it.
type trackedConn struct {
	net.Conn
	entry  *entry // the entity chosen by configForClient
	noCert bool   // no entity for the server name and no default
	noFit  bool   // the entity has no chain the client supports
}

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

// handshakeListener accepts TCP connections and completes their TLS
// handshakes concurrently, one goroutine per connection, before handing
// the *tls.Conn to the http.Server. Doing the handshake itself, rather
// than leaving it to net/http, is what lets the gateway see and classify
// every handshake outcome (Options.OnHandshake), failures included.
type handshakeListener struct {
	inner  net.Listener
	srv    *Server
	ctx    context.Context // cancelled by Close; aborts handshakes in flight
	cancel context.CancelFunc
	conns  chan net.Conn
	errs   chan error
	wg     sync.WaitGroup // the accept loop and every handshake goroutine
	once   sync.Once
}

func newHandshakeListener(ctx context.Context, inner net.Listener, srv *Server) *handshakeListener {
	l := &handshakeListener{inner: inner, srv: srv, conns: make(chan net.Conn), errs: make(chan error)}
	l.ctx, l.cancel = context.WithCancel(context.WithoutCancel(ctx))
	l.wg.Add(1)
	go l.acceptLoop()
	return l
}

func (l *handshakeListener) acceptLoop() {
	defer l.wg.Done()
	for {
		raw, err := l.inner.Accept()
		if err != nil {
			select {
			case l.errs <- err: // http.Server retries temporary errors with backoff
			case <-l.ctx.Done():
				return
			}
			if !isTemporary(err) {
				return
			}
			continue
		}
		l.wg.Add(1)
		go l.handshake(raw)
	}
}

// isTemporary reports errors net/http's Serve retries (EMFILE and friends).
func isTemporary(err error) bool {
	t, ok := err.(interface{ Temporary() bool })
	return ok && t.Temporary()
}

func (l *handshakeListener) handshake(raw net.Conn) {
	defer l.wg.Done()
	tc := &trackedConn{Conn: raw}
	conn := tls.Server(tc, l.srv.base)
	// The timeout is a deadline on the connection, as net/http bounds its
	// handshakes, not a timer context per connection (whose allocation,
	// timer and registration with l.ctx cost about 1% of a handshake's
	// CPU); l.ctx, cancelled by Close, still aborts the handshake. The
	// deadline is lifted once the handshake is done: the http.Server sets
	// its own (and lifts the one it sets around its own, no-op, call to
	// HandshakeContext).
	err := raw.SetDeadline(time.Now().Add(l.srv.handshakeTimeout))
	if err == nil {
		err = conn.HandshakeContext(l.ctx)
	}
	if err == nil {
		err = raw.SetDeadline(time.Time{})
	}
	l.srv.observe(tc, conn, err)
	if err != nil {
		// Like net/http: tell a plain-HTTP client what went wrong.
		var re tls.RecordHeaderError
		if errors.As(err, &re) && re.Conn != nil && looksLikeHTTP(re.RecordHeader) {
			_ = re.Conn.SetWriteDeadline(time.Now().Add(time.Second))
			_, _ = io.WriteString(re.Conn, "HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n")
		}
		_ = raw.Close()
		return
	}
	select {
	case l.conns <- conn:
	case <-l.ctx.Done():
		_ = conn.Close()
	}
}

// looksLikeHTTP reports whether a TLS record header is the start of a
// plain HTTP request.
func looksLikeHTTP(hdr [5]byte) bool {
	switch string(hdr[:]) {
	case "GET /", "HEAD ", "POST ", "PUT /", "OPTIO":
		return true
	}
	return false
}

// Accept returns the next connection whose handshake succeeded.
func (l *handshakeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case err := <-l.errs:
		return nil, err
	case <-l.ctx.Done():
		return nil, net.ErrClosed
	}
}

// Close stops accepting, aborts handshakes in flight and closes the
// underlying listener. Established connections are not touched.
func (l *handshakeListener) Close() error {
	var err error
	l.once.Do(func() {
		l.cancel()
		err = l.inner.Close()
	})
	return err
}

// Addr returns the underlying listener's address.
func (l *handshakeListener) Addr() net.Addr { return l.inner.Addr() }

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
