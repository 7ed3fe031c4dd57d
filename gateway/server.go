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
	"sync"
	"sync/atomic"
	"time"
)

// Options configure a Server.
type Options struct {
	// Logger receives the gateway's logs; nil discards them. Per-handshake
	// decisions are logged at Debug level only.
	Logger *slog.Logger
	// Upstream, when non-nil, is where requests are reverse-proxied after
	// the handshake, with X-Forwarded-For, -Host and -Proto set; without it
	// the gateway answers every request with a JSON ConnectionInfo.
	Upstream *url.URL
	// UpstreamCAs verify an https upstream; nil means the system roots.
	UpstreamCAs *x509.CertPool
	// UpstreamClientCert names the entity (type: client) whose certificate
	// is presented to an https upstream that asks for one (upstream mTLS).
	// It is looked up in the running configuration at each new upstream
	// connection, so it rotates like the rest; Apply refuses a Config
	// without it. "" presents none.
	UpstreamClientCert string
	// OnHandshake, when non-nil, is called after every TLS handshake the
	// server attempts, with its result. It must be fast and safe for
	// concurrent use; the reconciler counts handshakes with it.
	OnHandshake func(HandshakeResult)
	// TicketKeyRotation is how often session-ticket keys rotate while the
	// server is serving; zero means DefaultTicketKeyRotation.
	TicketKeyRotation time.Duration
	// CacheBytes is the memory budget of the cache of parsed entities (see
	// the package documentation): it keeps as many entities parsed at once
	// as fit in it by an estimate of their size, which depends on their key
	// types and number of chains; zero means DefaultCacheBytes.
	CacheBytes int
	// CacheSize, when positive, keeps that many entities parsed instead,
	// whatever their size.
	CacheSize int
	// TLS12CipherSuites are the cipher suites offered in TLS 1.2; nil means
	// DefaultTLS12CipherSuites.
	TLS12CipherSuites []uint16
}

// DefaultCacheBytes is the default memory budget of the parsed cache. An
// entity missing from the cache is built again on its next handshake,
// which costs an ECDSA or Ed25519 entity with one chain a few µs (its
// bytes are copied, nothing is parsed; BenchmarkEntryMiss) against ~600
// µs for the handshake, so a large cache buys little CPU and costs heap
// that every GC cycle marks. An RSA entity's miss parses its key
// (~100-200 µs): configurations of many RSA entities with traffic spread
// over most of them may want a larger budget.
const DefaultCacheBytes = 1 << 20

// DefaultCacheSize is the number of entities the default budget keeps
// parsed when all of them are of the smallest kind, an ECDSA or Ed25519
// chain each: a configuration of at most this many such entities is
// always fully parsed. Entities with RSA keys or several chains are
// larger and fewer fit.
const DefaultCacheSize = DefaultCacheBytes / (entryBaseBytes + chainBytes + ecKeyBytes)

// HandshakeResult classifies the outcome of a TLS handshake for metrics.
type HandshakeResult string

// Handshake results.
const (
	HandshakeOK                 HandshakeResult = "ok"
	HandshakeNoCertificate      HandshakeResult = "no_certificate"       // unknown SNI and no default
	HandshakeClientCertRejected HandshakeResult = "client_cert_rejected" // mTLS failed: missing, untrusted or too deep
	HandshakeProtocol           HandshakeResult = "protocol"             // no common version, cipher or certificate type
	HandshakeOther              HandshakeResult = "other"                // I/O errors, timeouts, client aborts
)

// String returns the result's metric label.
func (r HandshakeResult) String() string { return string(r) }

// Server is the TLS gateway. Create it with [New], give it a [Config] with
// [Server.Apply], and start it with [Server.Serve].
type Server struct {
	log            *slog.Logger
	onHandshake    func(HandshakeResult)
	upstreamClient string
	cacheSize      int // fixed number of entries, or 0
	cacheBytes     int // budget when cacheSize is 0
	ticketPeriod   time.Duration
	suites         []uint16 // TLS 1.2 cipher suites

	base *tls.Config // long-lived; owns the session-ticket keys
	snap atomic.Pointer[snapshot]
	http *http.Server

	applyMu sync.Mutex // serialises Apply, so each build sees its predecessor

	ticketMu      sync.Mutex // guards ticketKeys, ticketsShared
	ticketKeys    [][32]byte // current first
	ticketsShared bool       // the keys come from SetTicketKeys: no rotation of our own

	rotating atomic.Bool // a Serve call runs the ticket key rotation

	handshakeTimeout time.Duration // handshakeTimeout; tests shorten it before Serve
}

var _ interface{ Apply(Config) error } = (*Server)(nil)

// New returns a Server that serves nothing until the first Apply: every
// handshake before it fails with the unrecognized_name alert.
func New(opts Options) *Server {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		log:            log,
		onHandshake:    opts.OnHandshake,
		upstreamClient: opts.UpstreamClientCert,
		cacheSize:      max(opts.CacheSize, 0),
		cacheBytes:     opts.CacheBytes,
		ticketPeriod:   opts.TicketKeyRotation,

		handshakeTimeout: handshakeTimeout,
	}
	if s.cacheBytes <= 0 {
		s.cacheBytes = DefaultCacheBytes
	}
	if s.suites = opts.TLS12CipherSuites; s.suites == nil {
		s.suites = DefaultTLS12CipherSuites()
	}
	if s.ticketPeriod <= 0 {
		s.ticketPeriod = DefaultTicketKeyRotation
	}
	s.base = &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"h2", "http/1.1"},
	}
	s.base.CipherSuites = s.suites
	s.base.GetConfigForClient = s.configForClient
	s.rotateTicketKeys()
	s.snap.Store(emptySnapshot(s))
	s.http = &http.Server{
		Handler:           s.handler(opts),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ConnContext:       connContext,
		ErrorLog:          httpErrorLog(log),
	}
	return s
}

// Apply checks cfg and, if it is valid as a whole, makes it the running
// configuration with one atomic swap. An invalid cfg returns an error
// listing every problem found and leaves the running configuration
// untouched. Handshakes in flight finish with the configuration they
// started with; established connections are never touched.
//
// Apply copies what it needs out of cfg: the caller may drop cfg (and
// should, so that its parsed certificates can be collected).
func (s *Server) Apply(cfg Config) error {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	next, err := buildSnapshot(s, cfg, s.snap.Load())
	if err != nil {
		return fmt.Errorf("gateway: apply: %w", err)
	}
	s.snap.Store(next)
	return nil
}

// ApplyChanges changes the running configuration entity by entity: each
// entity of changed is created, or replaces the running entity of its
// name, and each entity named in removed is taken out. The result is
// checked as Apply checks a Config (each changed entity in full; names and
// SNIs unique across the result; the upstream client certificate kept) and
// made the running configuration with one atomic swap, or refused with
// every problem found and nothing changed. A name may not be both changed
// and removed, and a removed name must be running; renaming an entity is
// removing the old name and creating the new one.
//
// It costs O(len(changed)+len(removed)), not O(entities): the new snapshot
// shares the storage of unchanged entities with the running one, and their
// parsed form, so their handshakes go on as before. A chain of a changed
// entity whose leaf the running entity of that name serves may come
// without its key, as with Apply. Serving the result is the same as
// serving Apply of the whole resulting Config.
func (s *Server) ApplyChanges(changed []Entity, removed []string) error {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	next, err := changeSnapshot(s, s.snap.Load(), changed, removed)
	if err != nil {
		return fmt.Errorf("gateway: apply: %w", err)
	}
	s.snap.Store(next)
	return nil
}

// Serve accepts connections on ln, performs TLS handshakes and serves HTTP
// until ctx is done or Shutdown is called; it returns nil after either.
// While it runs, the session-ticket keys rotate every
// Options.TicketKeyRotation.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.rotating.CompareAndSwap(false, true) {
		rctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() {
			defer close(done)
			s.rotateTicketKeysEvery(rctx, s.ticketPeriod)
		}()
		defer func() {
			cancel()
			<-done
			s.rotating.Store(false)
		}()
	}
	hl := newHandshakeListener(ln, s)
	stop := context.AfterFunc(ctx, func() {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = s.Shutdown(shutdownCtx)
	})
	defer stop()
	err := s.http.Serve(hl)
	_ = hl.Close()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections, aborts handshakes in flight and
// waits for active requests to finish, or for ctx to end.
func (s *Server) Shutdown(ctx context.Context) error {
	return s.http.Shutdown(ctx)
}
