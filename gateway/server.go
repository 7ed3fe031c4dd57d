// Package gateway is certops' in-process TLS engine. It selects a
// certificate by SNI (exact name, then the one-label wildcard of the parent,
// then the default entity), serves HTTP/1.1 and HTTP/2 behind it, and
// rotates certificates in memory without a restart.
//
// The running state is an immutable snapshot behind an atomic pointer:
// [Server.Apply] builds and checks the whole next snapshot aside and swaps it
// in with one store, so a handshake always sees one complete configuration,
// connections already established are never touched, and an invalid Config
// changes nothing. All methods of [Server] are safe for concurrent use.
//
// The package knows nothing of Git, CUE or files: its input is [Config].
package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"
)

// Options configure a Server.
type Options struct {
	// Logger receives the gateway's logs; nil discards them.
	Logger *slog.Logger
	// Upstream, when non-nil, is where requests are reverse-proxied after
	// the handshake; without it the gateway answers every request with a
	// JSON description of the connection.
	Upstream *url.URL
	// UpstreamCAs verify an https upstream; nil means the system roots.
	UpstreamCAs *x509.CertPool
	// UpstreamClientCert names the type: client entity whose certificate is
	// presented to an https upstream (upstream mTLS); "" presents none.
	UpstreamClientCert string
	// OnHandshake, when non-nil, is called after every handshake with its
	// result (see HandshakeResult). It must be fast and safe for concurrent
	// use; the reconciler counts handshakes with it.
	OnHandshake func(HandshakeResult)
}

// HandshakeResult classifies the outcome of a TLS handshake for metrics.
type HandshakeResult string

// Handshake results.
const (
	HandshakeOK                 HandshakeResult = "ok"
	HandshakeNoCertificate      HandshakeResult = "no_certificate"       // unknown SNI and no default
	HandshakeClientCertRejected HandshakeResult = "client_cert_rejected" // mTLS failed
	HandshakeProtocol           HandshakeResult = "protocol"             // version or cipher mismatch
	HandshakeOther              HandshakeResult = "other"
)

// String returns the result's metric label.
func (r HandshakeResult) String() string { return string(r) }

// Server is the TLS gateway. Create it with [New], give it a [Config] with
// [Server.Apply], and start it with [Server.Serve].
type Server struct {
	log  *slog.Logger
	base *tls.Config // long-lived; owns the session-ticket keys
	snap atomic.Pointer[snapshot]
	http *http.Server
}

// New returns a Server that serves nothing until the first Apply.
func New(opts Options) *Server {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{log: log}
	s.base = &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"},
	}
	s.base.GetConfigForClient = s.configForClient
	s.snap.Store(&snapshot{})
	h := http.Handler(http.HandlerFunc(s.describe))
	s.http = &http.Server{
		Handler:           h,
		TLSConfig:         s.base,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	return s
}

// Apply checks cfg and, if it is valid as a whole, makes it the running
// configuration with one atomic swap. An invalid cfg returns an error and
// leaves the running configuration untouched.
func (s *Server) Apply(cfg Config) error {
	next, err := buildSnapshot(cfg, s.base)
	if err != nil {
		return fmt.Errorf("gateway: apply: %w", err)
	}
	s.snap.Store(next)
	return nil
}

// configForClient picks the entity for a ClientHello from the current
// snapshot. An unknown name with no default entity gets a config without
// certificates, which crypto/tls answers with the unrecognized_name alert.
func (s *Server) configForClient(hello *tls.ClientHelloInfo) (*tls.Config, error) {
	e := s.snap.Load().lookup(hello.ServerName)
	if e == nil {
		s.log.Debug("no certificate for server name", "server_name", hello.ServerName)
		return noCertificate, nil
	}
	return e.config, nil
}

// noCertificate has neither Certificates nor GetCertificate, so crypto/tls
// fails the handshake with the unrecognized_name alert (RFC 6066 section 3).
var noCertificate = &tls.Config{MinVersion: tls.VersionTLS12}

// Serve accepts connections on ln, performs TLS handshakes and serves HTTP
// until ctx is done or Shutdown is called. It returns nil after a shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	stop := context.AfterFunc(ctx, func() {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Shutdown(shutdownCtx)
	})
	defer stop()
	err := s.http.ServeTLS(ln, "", "")
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections and waits for active requests to
// finish, or for ctx to end.
func (s *Server) Shutdown(ctx context.Context) error {
	return s.http.Shutdown(ctx)
}
