package admin

import (
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Timeouts of the admin and webhook servers (issue 16 item 1). Without
// them a client that sent one request and idles, or sends part of a body
// and stops, holds its connection (and a file descriptor) for ever, and the
// webhook body is read before its signature can be checked.
const (
	// ReadHeaderTimeout bounds the request line and headers.
	ReadHeaderTimeout = 10 * time.Second
	// ReadTimeout bounds a whole request, body included: a webhook body
	// is at most MaxWebhookBody.
	ReadTimeout = 30 * time.Second
	// WriteTimeout bounds writing an answer; POST /api/v1/reconcile?wait=1
	// extends it for itself to ReconcileTimeout.
	WriteTimeout = 30 * time.Second
	// IdleTimeout closes a kept-alive connection that sends nothing more.
	IdleTimeout = 60 * time.Second
	// MaxHeaderBytes bounds the request headers.
	MaxHeaderBytes = 64 << 10
)

// NewHTTPServer returns the http.Server of an admin or webhook listener,
// with the timeouts above. log receives net/http's own complaints at Debug.
func NewHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
}

// Bounds of DefaultMaxConns.
const (
	minConns = 16
	maxConns = 512
)

// DefaultMaxConns is the connection cap of each admin or webhook listener
// when none is configured: an eighth of the process's file-descriptor
// limit, between 16 and 512. Two such listeners then hold at most a quarter
// of the descriptors, and the gateway keeps the rest.
func DefaultMaxConns() int {
	n := fileLimit() / 8
	return min(max(n, minConns), maxConns)
}

// RefusalLogInterval is how often a full listener logs the connections it
// refused: once per interval with their count, never once per connection.
const RefusalLogInterval = 10 * time.Second

// LimitListener returns a listener that holds at most max connections of
// ln open at once. A connection accepted while max are open is closed at
// once, so that a flood costs one descriptor for an instant rather than one
// for as long as the client likes, and the listener's other clients are
// not delayed behind it. Refusals are logged at Warn at most once per
// RefusalLogInterval, with their count and the listener's name. max <= 0
// means DefaultMaxConns. The result is safe for concurrent use; closing it
// closes ln.
func LimitListener(ln net.Listener, max int, name string, log *slog.Logger) net.Listener {
	if max <= 0 {
		max = DefaultMaxConns()
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &limitListener{Listener: ln, max: int64(max), name: name, log: log, now: time.Now}
}

type limitListener struct {
	net.Listener
	max  int64
	name string
	log  *slog.Logger
	now  func() time.Time

	open atomic.Int64 // connections handed out and not closed yet

	mu       sync.Mutex // guards refused and lastLog
	refused  int        // refusals not logged yet
	lastLog  time.Time
	refusals atomic.Int64 // every refusal, for tests
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) > l.max {
			l.open.Add(-1)
			// Counted first, so that a client that sees the close
			// sees it counted; then an immediate close, with no
			// answer: the cheapest refusal.
			l.refuse()
			c.Close()
			continue
		}
		return &limitedConn{Conn: c, release: func() { l.open.Add(-1) }}, nil
	}
}

// refuse counts a refusal and logs the refusals of the last interval when
// the interval has passed.
func (l *limitListener) refuse() {
	l.refusals.Add(1)
	l.mu.Lock()
	l.refused++
	now := l.now()
	if now.Sub(l.lastLog) < RefusalLogInterval {
		l.mu.Unlock()
		return
	}
	n := l.refused
	l.refused, l.lastLog = 0, now
	l.mu.Unlock()
	l.log.Warn("listener full: connections refused", "listener", l.name, "addr", l.Addr().String(),
		"refused", n, "max_conns", l.max, "interval", RefusalLogInterval)
}

// limitedConn frees its slot once, on the first Close.
type limitedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
