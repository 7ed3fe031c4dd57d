package gateway

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"time"
)

// ConnectionInfo is the JSON answer of the gateway when no upstream is
// configured: what the client negotiated. Tests and examples read it.
type ConnectionInfo struct {
	SNI           string `json:"sni"`
	Entity        string `json:"entity"` // chosen at handshake time
	TLSVersion    string `json:"tls_version"`
	CipherSuite   string `json:"cipher_suite"`
	Protocol      string `json:"protocol"`
	ClientSubject string `json:"client_subject,omitempty"`
	Host          string `json:"host"`
}

type connKey struct{}

// connContext records the connection's trackedConn in its context, for
// the handlers to learn which entity the handshake chose.
func connContext(ctx context.Context, c net.Conn) context.Context {
	if tlsConn, ok := c.(*tls.Conn); ok {
		if tc, ok := tlsConn.NetConn().(*trackedConn); ok {
			return context.WithValue(ctx, connKey{}, tc)
		}
	}
	return ctx
}

// handshakeEntry returns the entity the request's connection was served
// with, or nil.
func handshakeEntry(r *http.Request) *entry {
	if tc, ok := r.Context().Value(connKey{}).(*trackedConn); ok {
		return tc.entry
	}
	return nil
}

// handler builds the HTTP side: the Host/SNI check in front of the
// reverse proxy or the JSON answer.
func (s *Server) handler(opts Options) http.Handler {
	next := http.Handler(http.HandlerFunc(describe))
	if opts.Upstream != nil {
		next = s.reverseProxy(opts)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.misdirected(r) {
			http.Error(w, "misdirected request: the Host selects another entity than the TLS server name", http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// misdirected reports whether r's Host selects another entity than its
// connection's handshake did while either of them requires client
// certificates: otherwise a client could complete a handshake with an
// entity that does not ask for a certificate and then reach an mTLS
// entity's routes by Host (the mTLS bypass Traefik shipped). RFC 9110
// section 15.5.20 asks the client to retry on a new connection.
func (s *Server) misdirected(r *http.Request) bool {
	conn := handshakeEntry(r)
	if conn == nil {
		return false
	}
	snap := s.snap.Load()
	i := snap.lookup(hostOnly(r.Host))
	if snap.entityName(i) == conn.name {
		return false
	}
	if conn.mtls {
		return true
	}
	return i >= 0 && snap.entities.at(uint32(i)).pool >= 0
}

// describe answers a request with the ConnectionInfo of its connection.
func describe(w http.ResponseWriter, r *http.Request) {
	info := ConnectionInfo{Host: r.Host, Protocol: r.Proto}
	if e := handshakeEntry(r); e != nil {
		info.Entity = e.name
	}
	if cs := r.TLS; cs != nil {
		info.SNI = cs.ServerName
		info.TLSVersion = tls.VersionName(cs.Version)
		info.CipherSuite = tls.CipherSuiteName(cs.CipherSuite)
		if len(cs.PeerCertificates) > 0 {
			info.ClientSubject = cs.PeerCertificates[0].Subject.String()
		}
	}
	w.Header().Set("Content-Type", "application/json")
	// A JSON document that is nothing to frame, run or sniff, for
	// browsers and scanners (testssl's security_headers).
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(info)
}

// reverseProxy forwards requests to opts.Upstream with X-Forwarded-For,
// -Host and -Proto set (the Host header becomes the upstream's, like
// nginx's proxy_pass). An https upstream is verified with UpstreamCAs and,
// when it asks, gets the certificate of the UpstreamClientCert entity from
// the snapshot running when the upstream connection is made.
func (s *Server) reverseProxy(opts Options) http.Handler {
	upstream := opts.Upstream
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{
		MinVersion: tls.VersionTLS12,
		RootCAs:    opts.UpstreamCAs,
	}
	if opts.UpstreamClientCert != "" {
		tr.TLSClientConfig.GetClientCertificate = s.upstreamCertificate
	}
	tr.ForceAttemptHTTP2 = true
	tr.ResponseHeaderTimeout = time.Minute
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(upstream)
			pr.SetXForwarded()
		},
		Transport: tr,
		ErrorLog:  slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			s.log.Warn("upstream request failed", "upstream", upstream.Redacted(), "remote_addr", r.RemoteAddr, "err", err)
			status := http.StatusBadGateway
			if errors.Is(err, context.DeadlineExceeded) {
				status = http.StatusGatewayTimeout
			}
			http.Error(w, http.StatusText(status), status)
		},
	}
}

// upstreamCertificate returns the chain of the UpstreamClientCert entity
// that the upstream accepts, looked up in the current snapshot.
func (s *Server) upstreamCertificate(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
	snap := s.snap.Load()
	i := snap.indexOf(s.upstreamClient)
	if i < 0 {
		return nil, fmt.Errorf("gateway: upstream client certificate: entity %q not in the running configuration", s.upstreamClient)
	}
	e, err := snap.entry(i)
	if err != nil {
		return nil, err
	}
	for n := range e.chains {
		if cri.SupportsCertificate(&e.chains[n]) == nil {
			return &e.chains[n], nil
		}
	}
	return &e.chains[0], nil
}
