package e2e

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestListenerFlood is issue 16 item 1: idle and half-sent connections
// flooding the admin API and the webhook listener of a daemon whose file
// descriptor limit is lowered to 256 (prlimit) must not exhaust it. Each
// listener holds at most its cap (an eighth of the limit: 32), refuses the
// rest at once and logs the refusals once per interval, and the gateway
// keeps completing handshakes throughout.
func TestListenerFlood(t *testing.T) {
	prlimit := requireTool(t, "prlimit")
	const fdLimit = 256
	const wantCap = fdLimit / 8
	secret := filepath.Join(t.TempDir(), "webhook-secret")
	if err := os.WriteFile(secret, []byte("flood-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	hook := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	d := runDaemon(t, daemonConfig{
		wrap: []string{prlimit, fmt.Sprintf("--nofile=%d:%d", fdLimit, fdLimit), "--"},
		args: []string{"--webhook-listen", hook, "--webhook-secret-file", secret},
	})
	roots := x509.NewCertPool()
	ca, err := os.ReadFile(exampleCA)
	if err != nil {
		t.Fatal(err)
	}
	roots.AppendCertsFromPEM(ca)
	if _, err := servedLeaf(d.listen, "shop.example.com", roots); err != nil {
		t.Fatalf("handshake before the flood: %v", err)
	}

	// Four kinds of hostile client, as the issue found them: one that
	// says nothing, one that sends half a request line, one that sends
	// one request and idles (keep-alive), and one that sends the headers
	// of a webhook and part of its body.
	payloads := []string{
		"",
		"GET /healthz HT",
		"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST /hooks/generic HTTP/1.1\r\nHost: x\r\nX-Signature-256: sha256=" + strings.Repeat("ab", 32) + "\r\nContent-Length: 100000\r\n\r\n{",
	}
	const perListener = 2000 // far above the daemon's whole fd limit
	type flood struct {
		name  string
		addr  string
		conns []net.Conn
	}
	floods := []*flood{{name: "admin", addr: d.admin}, {name: "webhook", addr: hook}}
	t.Cleanup(func() {
		for _, f := range floods {
			for _, c := range f.conns {
				c.Close()
			}
		}
	})
	start := time.Now()
	var wg sync.WaitGroup
	for _, f := range floods {
		wg.Go(func() {
			for i := range perListener {
				c, err := net.DialTimeout("tcp", f.addr, 5*time.Second)
				if err != nil {
					continue // the backlog is full: refused by the kernel, fine
				}
				if p := payloads[i%len(payloads)]; p != "" {
					c.SetWriteDeadline(time.Now().Add(time.Second))
					c.Write([]byte(p))
				}
				f.conns = append(f.conns, c)
			}
		})
	}
	// The gateway handshakes while the flood runs and after it.
	var handshakeErrs []error
	handshakes := 0
	for wgDone := waitChan(&wg); ; {
		if _, err := servedLeaf(d.listen, "shop.example.com", roots); err != nil {
			handshakeErrs = append(handshakeErrs, err)
		}
		handshakes++
		select {
		case <-wgDone:
		default:
			time.Sleep(50 * time.Millisecond)
			continue
		}
		break
	}
	t.Logf("flood of %d connections per listener opened in %v; %d gateway handshakes meanwhile", perListener, time.Since(start).Round(time.Millisecond), handshakes)
	for range 5 {
		if _, err := servedLeaf(d.listen, "shop.example.com", roots); err != nil {
			handshakeErrs = append(handshakeErrs, err)
		}
	}
	if len(handshakeErrs) > 0 {
		t.Errorf("%d gateway handshakes failed during or after the flood, want 0; first: %v", len(handshakeErrs), handshakeErrs[0])
	}

	// Which connections does the daemon still hold? A refused one reads
	// EOF (or a reset) at once; a held one times out.
	for _, f := range floods {
		held := 0
		for _, c := range f.conns {
			c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
			var buf [512]byte
			n, err := c.Read(buf[:])
			var ne net.Error
			if n == 0 && errors.As(err, &ne) && ne.Timeout() {
				held++
			}
		}
		t.Logf("%s listener: %d of %d connections held (cap %d)", f.name, held, len(f.conns), wantCap)
		if held > wantCap {
			t.Errorf("%s listener holds %d connections, want at most its cap %d", f.name, held, wantCap)
		}
		if held == 0 {
			t.Errorf("%s listener holds no connection: the flood did not reach it", f.name)
		}
		if lines := strings.Count(d.logs.String(), `"listener":"`+f.name+`"`); lines == 0 || lines > 3 {
			t.Errorf("%s listener: %d refusal log lines for the flood, want 1 to 3 (once per interval)", f.name, lines)
		}
	}

	// Once the flood ends the listeners serve again.
	for _, f := range floods {
		for _, c := range f.conns {
			c.Close()
		}
		f.conns = nil
	}
	eventually(t, 30*time.Second, "the admin API answering after the flood", func() (bool, string) {
		resp, err := (&http.Client{Timeout: 2 * time.Second}).Get("http://" + d.admin + "/healthz")
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == 200, resp.Status
	})
}

// waitChan returns a channel closed when wg is done.
func waitChan(wg *sync.WaitGroup) <-chan struct{} {
	c := make(chan struct{})
	go func() { wg.Wait(); close(c) }()
	return c
}
