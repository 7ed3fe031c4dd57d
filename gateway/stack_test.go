package gateway

import (
	"crypto/tls"
	"net"
	"runtime/debug"
	"sync"
	"testing"
	"time"
	"unsafe"

	"certops/fixtures"
)

// TestHandshakeStack pins handshakeStack: after growStack, a connection's
// handshake and its request do not grow its goroutine's stack again. It
// finds out from where the stack is: a stack that grows moves, and the
// same call path then marks another address. The listener's connections
// mark where their stack is when net/http sets the deadline before the
// handshake, when it lifts it after, and at their close.
func TestHandshakeStack(t *testing.T) {
	// A collection may shrink a stack, which moves it too.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	p := newPKI(t)
	inter := p.clientRoot.Intermediate(t, "client intermediate")
	client := inter.Leaf(t, fixtures.LeafOptions{CommonName: "client", Client: true}).TLS(t)
	entity := func(name string, key fixtures.KeyType) Entity {
		leaf := p.root.Leaf(t, fixtures.LeafOptions{DNSNames: []string{name}, Key: key})
		return Entity{Name: name, SNIs: []string{name}, Chains: []tls.Certificate{leaf.TLS(t)}}
	}
	cfg := Config{Entities: []Entity{
		entity("ecdsa.example", fixtures.ECDSA),
		entity("rsa.example", fixtures.RSA),
		entity("ed25519.example", fixtures.Ed25519),
		mtlsEntity(t, p, "mtls", "mtls.example", 1, p.clientRoot),
	}}
	tests := []struct {
		name    string
		sni     string
		version uint16
		grow    bool // the connection grows the stack during the handshake: the check must see it
	}{
		{"ECDSA TLS 1.3", "ecdsa.example", tls.VersionTLS13, false},
		{"ECDSA TLS 1.2", "ecdsa.example", tls.VersionTLS12, false},
		{"RSA TLS 1.3", "rsa.example", tls.VersionTLS13, false},
		{"RSA TLS 1.2", "rsa.example", tls.VersionTLS12, false},
		{"Ed25519 TLS 1.3", "ed25519.example", tls.VersionTLS13, false},
		{"client certificate TLS 1.3", "mtls.example", tls.VersionTLS13, false},
		{"client certificate TLS 1.2", "mtls.example", tls.VersionTLS12, false},
		{"stack grown during the handshake", "ecdsa.example", tls.VersionTLS13, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ml := &markListener{Listener: ln, grow: tt.grow}
			s := New(Options{})
			if err := s.Apply(cfg); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- s.Serve(t.Context(), ml) }()
			const conns = 20
			for range conns {
				c := p.clientConfig(tt.sni)
				c.MaxVersion = tt.version
				if tt.sni == "mtls.example" {
					c.Certificates = []tls.Certificate{client}
				}
				conn, err := handshake(ml.Addr().String(), c)
				if err != nil {
					t.Fatal(err)
				}
				if status, _, err := request(conn, tt.sni); err != nil || status != 200 {
					t.Fatalf("request: %d, %v", status, err)
				}
				conn.Close()
			}
			// Closed by the clients, each in its own goroutine, not by
			// Shutdown in its caller's.
			marks := ml.wait(t, conns)
			if err := s.Shutdown(t.Context()); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			moved, offsets := 0, map[uintptr]bool{}
			for _, m := range marks {
				if m.lifted != m.before {
					moved++
				}
				offsets[m.closed-m.before] = true
			}
			if tt.grow {
				if moved != conns {
					t.Errorf("%d of %d stacks grown during the handshake moved, want all: the check cannot see a growth", moved, conns)
				}
				return
			}
			if moved > 0 {
				t.Errorf("%d of %d handshakes grew the stack of their connection after growStack: raise handshakeStack", moved, conns)
			}
			if len(offsets) > 1 {
				t.Errorf("the close of the connections marked %d stack offsets from before the handshake, want 1: requests grew the stack", len(offsets))
			}
		})
	}
}

// stackMark returns where the stack of its caller ends.
//
//go:noinline
func stackMark() uintptr {
	var b byte
	return uintptr(unsafe.Pointer(&b))
}

// bigFrame needs a stack frame twice handshakeStack, which grows the stack
// that growStack made.
//
//go:noinline
func bigFrame(i int) byte {
	var frame [2 * handshakeStack]byte
	frame[i] = 1
	return frame[i/2]
}

// markListener's connections mark their stack (see TestHandshakeStack).
type markListener struct {
	net.Listener
	grow bool

	mu    sync.Mutex
	marks []*stackMarks // of closed connections
}

type stackMarks struct{ before, lifted, closed uintptr }

func (l *markListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &markConn{Conn: c, ln: l}, nil
}

func (l *markListener) wait(tb testing.TB, n int) []*stackMarks {
	tb.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		l.mu.Lock()
		marks := l.marks
		l.mu.Unlock()
		if len(marks) >= n {
			return marks
		}
	}
	tb.Fatalf("fewer than %d connections closed", n)
	return nil
}

// markConn is the net.Conn under a trackedConn: net/http's calls reach
// it through the trackedConn, each on one call path.
type markConn struct {
	net.Conn
	ln    *markListener
	marks stackMarks
	read  bool
}

func (c *markConn) SetReadDeadline(t time.Time) error {
	switch {
	case !t.IsZero() && c.marks.before == 0:
		c.marks.before = stackMark()
	case t.IsZero() && c.marks.lifted == 0:
		c.marks.lifted = stackMark()
	}
	return c.Conn.SetReadDeadline(t)
}

func (c *markConn) Read(b []byte) (int, error) {
	if c.ln.grow && !c.read {
		c.read = true
		_ = bigFrame(0)
	}
	return c.Conn.Read(b)
}

func (c *markConn) Close() error {
	c.marks.closed = stackMark()
	c.ln.mu.Lock()
	c.ln.marks = append(c.ln.marks, &c.marks)
	c.ln.mu.Unlock()
	return c.Conn.Close()
}
