package fleet

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// ConnOptions say how to reach NATS, with the settings of the nats CLI.
type ConnOptions struct {
	// URLs are the servers to try, "nats://host:port" or "host:port"; a
	// URL may carry user:password.
	URLs []string
	// Creds is a NATS credentials file (JWT and nkey seed).
	Creds string
	// User and Password authenticate without credentials.
	User, Password string
	// CA verifies the servers' TLS certificates; Cert and Key are this
	// client's certificate for mutual TLS.
	CA, Cert, Key string
	// Name names the connection in the server's monitoring.
	Name string
	// Logger receives disconnects and reconnects; nil discards them.
	Logger *slog.Logger
	// Once makes Connect fail when no server answers now, with why, as
	// the nats CLI does: for a command that reads the bus and exits. A
	// node or publisher leaves it false and keeps trying in the
	// background.
	Once bool
}

// Environment variables of the nats CLI that ConnOptionsFromEnv reads.
const (
	EnvURL      = "NATS_URL"
	EnvCreds    = "NATS_CREDS"
	EnvUser     = "NATS_USER"
	EnvPassword = "NATS_PASSWORD"
	EnvCA       = "NATS_CA"
	EnvCert     = "NATS_CERT"
	EnvKey      = "NATS_KEY"
)

// ConnOptionsFromEnv reads the nats CLI's variables; the caller then sets
// the fields its flags give, so that flags win.
func ConnOptionsFromEnv(getenv func(string) string) ConnOptions {
	var o ConnOptions
	if v := getenv(EnvURL); v != "" {
		o.URLs = SplitURLs(v)
	}
	o.Creds = getenv(EnvCreds)
	o.User = getenv(EnvUser)
	o.Password = getenv(EnvPassword)
	o.CA = getenv(EnvCA)
	o.Cert = getenv(EnvCert)
	o.Key = getenv(EnvKey)
	return o
}

// SplitURLs splits a comma-separated server list, dropping empty items.
func SplitURLs(s string) []string {
	var out []string
	for u := range strings.SplitSeq(s, ",") {
		if u = strings.TrimSpace(u); u != "" {
			out = append(out, u)
		}
	}
	return out
}

// nameRE is what a fleet or node name may be: it is part of bucket names
// and keys.
var nameRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ValidName reports whether s can name a fleet or a node: 1 to 64 letters,
// digits, '-' or '_'.
func ValidName(s string) bool { return nameRE.MatchString(s) }

// ParseSource splits a node's --source, nats://HOST:PORT[,HOST:PORT...]/NAME,
// into server URLs and the fleet name.
func ParseSource(src string) (urls []string, fleet string, err error) {
	rest, ok := strings.CutPrefix(src, "nats://")
	if !ok {
		return nil, "", fmt.Errorf("source %q: want nats://HOST:PORT[,HOST:PORT...]/FLEET", redactSource(src))
	}
	hosts, name, ok := strings.Cut(rest, "/")
	if !ok || !ValidName(name) {
		return nil, "", fmt.Errorf("source %q: the path must be the fleet name (letters, digits, - or _)", redactSource(src))
	}
	for h := range strings.SplitSeq(hosts, ",") {
		if h == "" {
			continue
		}
		if _, err := url.Parse("nats://" + h); err != nil {
			return nil, "", fmt.Errorf("source %q: a server is not host:port", redactSource(src))
		}
		urls = append(urls, "nats://"+h)
	}
	if len(urls) == 0 {
		return nil, "", fmt.Errorf("source %q: no server", redactSource(src))
	}
	return urls, name, nil
}

// redactSource hides a password written in a server URL.
func redactSource(s string) string {
	rest, ok := strings.CutPrefix(s, "nats://")
	if !ok || !strings.Contains(rest, "@") {
		return s
	}
	hosts, path, _ := strings.Cut(rest, "/")
	parts := strings.Split(hosts, ",")
	for i, h := range parts {
		if u, err := url.Parse("nats://" + h); err == nil {
			parts[i] = strings.TrimPrefix(u.Redacted(), "nats://")
		} else {
			parts[i] = "(invalid)"
		}
	}
	return "nats://" + strings.Join(parts, ",") + "/" + path
}

// Conn is a connection to NATS that reconnects forever: a node that
// starts while NATS is down serves from its data dir, and converges once
// a server answers.
type Conn struct {
	nc *nats.Conn
}

// Connect connects to the servers of o. Unless o.Once, it returns at once
// when no server answers yet, and the connection keeps trying in the
// background.
func Connect(o ConnOptions) (*Conn, error) {
	if len(o.URLs) == 0 {
		return nil, errors.New("nats: no server URL (--nats or NATS_URL)")
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	opts := []nats.Option{
		nats.Name(o.Name),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(!o.Once),
		nats.ReconnectWait(500 * time.Millisecond),
		nats.ReconnectJitter(250*time.Millisecond, time.Second),
		nats.Timeout(5 * time.Second),
		// Nothing is buffered while no server is connected: a request
		// then fails at once instead of waiting for its whole deadline
		// (a publish for minutes, a node's fetch for 30 s), and the
		// caller's retry, with backoff, tries again after the reconnect.
		nats.ReconnectBufSize(-1),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("disconnected from NATS; retrying", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("reconnected to NATS", "server", nc.ConnectedUrlRedacted())
		}),
	}
	if o.Creds != "" {
		opts = append(opts, nats.UserCredentials(o.Creds))
	}
	if o.User != "" {
		opts = append(opts, nats.UserInfo(o.User, o.Password))
	}
	if o.CA != "" {
		opts = append(opts, nats.RootCAs(o.CA))
	}
	if o.Cert != "" || o.Key != "" {
		if o.Cert == "" || o.Key == "" {
			return nil, errors.New("nats: a client certificate needs both --nats-cert and --nats-key")
		}
		opts = append(opts, nats.ClientCert(o.Cert, o.Key))
	}
	var dial *failedDial
	if o.Once {
		dial = &failedDial{d: net.Dialer{Timeout: 5 * time.Second}}
		opts = append(opts, nats.SetCustomDialer(dial))
	}
	nc, err := nats.Connect(strings.Join(o.URLs, ","), opts...)
	if err != nil {
		if cause := dial.last(); cause != nil && errors.Is(err, nats.ErrNoServers) {
			err = cause // nats.go only says that no server answered
		}
		return nil, fmt.Errorf("nats: connect to %s: %w", redactURLs(o.URLs), err)
	}
	return &Conn{nc: nc}, nil
}

// redactURLs lists urls with their passwords hidden.
func redactURLs(urls []string) string {
	out := make([]string, len(urls))
	for i, s := range urls {
		out[i] = s
		if u, err := url.Parse(s); err == nil && u.User != nil {
			out[i] = u.Redacted()
		} else if at := strings.LastIndex(s, "@"); at >= 0 {
			out[i] = "xxxxx" + s[at:] // not a URL that names its user: hide what may be one
		}
	}
	return strings.Join(out, ", ")
}

// failedDial dials as nats.go does and keeps the last dial's error: why
// a one-shot connection found no server.
type failedDial struct {
	d   net.Dialer
	mu  sync.Mutex
	err error
}

func (f *failedDial) Dial(network, address string) (net.Conn, error) {
	c, err := f.d.Dial(network, address)
	if err != nil {
		f.mu.Lock()
		f.err = err
		f.mu.Unlock()
	}
	return c, err
}

func (f *failedDial) last() error {
	if f == nil {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

// Connected reports whether the connection currently has a server.
func (c *Conn) Connected() bool { return c.nc.IsConnected() }

// Close closes the connection.
func (c *Conn) Close() { c.nc.Close() }

// Stats returns the bytes this connection has received and sent.
func (c *Conn) Stats() (in, out uint64) {
	s := c.nc.Stats()
	return s.InBytes, s.OutBytes
}
