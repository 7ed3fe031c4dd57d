package e2e

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"
)

// Probes in Go's TLS client, for polling: cheaper than a process per try.
// Assertions that matter are confirmed with openssl or curl as well.

// servedLeaf does one full TLS handshake with addr for sni and returns the
// leaf the gateway served, verified against roots.
func servedLeaf(addr, sni string, roots *x509.CertPool) (*x509.Certificate, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{
		ServerName:         sni,
		RootCAs:            roots,
		ClientSessionCache: nil, // a full handshake every time
	})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0], nil
}

// pool returns a certificate pool of the given CAs.
func pool(cas ...*testCA) *x509.CertPool {
	p := x509.NewCertPool()
	for _, ca := range cas {
		p.AddCert(ca.cert)
	}
	return p
}

// keepAlive is one HTTP/1.1 connection to the gateway kept open across
// requests, as a long-lived client holds it.
type keepAlive struct {
	conn *tls.Conn
	br   *bufio.Reader
	host string
}

// openKeepAlive connects to addr for host and completes the handshake.
func openKeepAlive(tb testing.TB, addr, host string, roots *x509.CertPool) *keepAlive {
	tb.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: host, RootCAs: roots, NextProtos: []string{"http/1.1"}})
	if err != nil {
		tb.Fatalf("keep-alive connection to %s for %s: %v", addr, host, err)
	}
	tb.Cleanup(func() { conn.Close() })
	return &keepAlive{conn: conn, br: bufio.NewReader(conn), host: host}
}

// get sends one request on the connection and decodes the answer.
func (k *keepAlive) get() (connInfo, error) {
	k.conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := fmt.Fprintf(k.conn, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", k.host); err != nil {
		return connInfo{}, err
	}
	resp, err := http.ReadResponse(k.br, nil)
	if err != nil {
		return connInfo{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return connInfo{}, err
	}
	if resp.StatusCode != http.StatusOK || resp.Close {
		return connInfo{}, fmt.Errorf("status %s, close %v: %s", resp.Status, resp.Close, body)
	}
	var ci connInfo
	err = json.Unmarshal(body, &ci)
	return ci, err
}

// leaf is the certificate the connection was established with.
func (k *keepAlive) leaf() *x509.Certificate {
	return k.conn.ConnectionState().PeerCertificates[0]
}

// statusDoc is the part of GET /api/v1/status the suite reads
// (DESIGN.md 5).
type statusDoc struct {
	Source  string `json:"source"`
	Ready   bool   `json:"ready"`
	Applied *struct {
		Revision string    `json:"revision"`
		Time     time.Time `json:"time"`
	} `json:"applied"`
	LastAttempt *struct {
		Revision string       `json:"revision"`
		Result   string       `json:"result"`
		Errors   []problemDoc `json:"errors"`
		Error    string       `json:"error"`
	} `json:"last_attempt"`
	Entities int `json:"entities"`
}

type problemDoc struct {
	File     string `json:"file"`
	Line     int    `json:"line"`
	Column   int    `json:"column"`
	Field    string `json:"field"`
	Message  string `json:"message"`
	Severity string `json:"severity"`
}

// status fetches and decodes /api/v1/status; raw is the body as served.
func (d *daemon) status() (st statusDoc, raw []byte) {
	d.tb.Helper()
	code, body := d.get("/api/v1/status")
	if code != http.StatusOK {
		d.tb.Fatalf("GET /api/v1/status: %d %s", code, body)
	}
	if err := json.Unmarshal(body, &st); err != nil {
		d.tb.Fatalf("GET /api/v1/status: %v in %s", err, body)
	}
	return st, body
}

// appliedRevision is the revision the daemon reports as applied, or "".
func (d *daemon) appliedRevision() string {
	d.tb.Helper()
	st, _ := d.status()
	if st.Applied == nil {
		return ""
	}
	return st.Applied.Revision
}

// waitServed polls until the gateway serves a leaf with the given serial
// for sni.
func waitServed(tb testing.TB, addr, sni string, roots *x509.CertPool, want *testLeaf) {
	tb.Helper()
	eventually(tb, 60*time.Second, fmt.Sprintf("%s served with serial %x", sni, want.cert.SerialNumber), func() (bool, string) {
		c, err := servedLeaf(addr, sni, roots)
		if err != nil {
			return false, err.Error()
		}
		return c.SerialNumber.Cmp(want.cert.SerialNumber) == 0, fmt.Sprintf("serial %x", c.SerialNumber)
	})
}

// serialOf formats a certificate's serial for messages; nil is "none".
func serialOf(c *x509.Certificate) string {
	if c == nil {
		return "none"
	}
	return fmt.Sprintf("%x", c.SerialNumber)
}
