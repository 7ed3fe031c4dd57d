package e2e

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// handshake is what `openssl s_client` saw.
type handshake struct {
	ok       bool              // the handshake completed (a cipher was negotiated)
	reused   bool              // the session was resumed
	leaf     *x509.Certificate // the server's certificate, nil if none
	protocol string            // TLSv1.2, TLSv1.3
	cipher   string
	verify   string // "0 (ok)" when the chain verified against -CAfile
	out      string // the whole output, for failure messages
}

var (
	newSessionRE = regexp.MustCompile(`(?m)^(New|Reused), (\S+), Cipher is (\S+)`)
	verifyRE     = regexp.MustCompile(`(?m)^\s*Verify return code: (.*)$`)
)

// sClient runs `openssl s_client -connect addr args...` with no input and
// parses what it printed. A failed handshake is not a test failure: the
// result says ok=false.
func sClient(tb testing.TB, addr string, args ...string) handshake {
	tb.Helper()
	return sClientInput(tb, addr, "", args...)
}

// sClientGet runs s_client like sClient, sends an HTTP/1.1 GET for host
// over the connection and reads until the server closes it (-ign_eof), and
// reports whether an HTTP 200 answer came back. It tells a refused client
// certificate apart in TLS 1.3, where the client's handshake completes
// before the server checks the certificate.
func sClientGet(tb testing.TB, addr, host string, args ...string) (handshake, bool) {
	tb.Helper()
	req := "GET / HTTP/1.1\r\nHost: " + host + "\r\nConnection: close\r\n\r\n"
	h := sClientInput(tb, addr, req, append([]string{"-ign_eof"}, args...)...)
	return h, strings.Contains(h.out, "HTTP/1.1 200 OK")
}

func sClientInput(tb testing.TB, addr, input string, args ...string) handshake {
	tb.Helper()
	requireTool(tb, "openssl")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	argv := append([]string{"s_client", "-connect", addr}, args...)
	cmd := exec.CommandContext(ctx, "openssl", argv...)
	cmd.Stdin = strings.NewReader(input)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	runErr := cmd.Run()
	if ctx.Err() != nil {
		tb.Fatalf("openssl %s: timed out:\n%s", strings.Join(argv, " "), out.String())
	}
	h := handshake{out: out.String()}
	if m := newSessionRE.FindStringSubmatch(h.out); m != nil && m[3] != "(NONE)" {
		h.ok = runErr == nil
		h.reused = m[1] == "Reused"
		h.protocol, h.cipher = m[2], m[3]
	}
	if m := verifyRE.FindStringSubmatch(h.out); m != nil {
		h.verify = strings.TrimSpace(m[1])
	}
	if i := strings.Index(h.out, "-----BEGIN CERTIFICATE-----"); i >= 0 {
		if b, _ := pem.Decode([]byte(h.out[i:])); b != nil {
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				tb.Fatalf("openssl printed a certificate that does not parse: %v", err)
			}
			h.leaf = c
		}
	}
	return h
}

// describe summarises a handshake for failure messages.
func (h handshake) describe() string {
	if !h.ok {
		return "handshake failed:\n" + tail(h.out, 15)
	}
	return fmt.Sprintf("%s %s, leaf CN=%q %s serial %x, verify %q", h.protocol, h.cipher,
		h.leaf.Subject.CommonName, h.leaf.PublicKeyAlgorithm, h.leaf.SerialNumber, h.verify)
}

// connInfo is the gateway's JSON description of a connection (DESIGN.md 3).
type connInfo struct {
	SNI           string `json:"sni"`
	Entity        string `json:"entity"`
	TLSVersion    string `json:"tls_version"`
	CipherSuite   string `json:"cipher_suite"`
	Protocol      string `json:"protocol"`
	ClientSubject string `json:"client_subject"`
	Host          string `json:"host"`
}

// curlResult is the outcome of one curl run.
type curlResult struct {
	code   int // curl's exit code: 0 on success
	stdout string
	stderr string
}

// curl runs curl against https://name:port/ resolving name to 127.0.0.1
// with --resolve, trusting caFile, and returns its outcome.
func curl(tb testing.TB, name string, port int, caFile string, args ...string) curlResult {
	tb.Helper()
	requireTool(tb, "curl")
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	argv := append([]string{"-sS", "--max-time", "30", "--cacert", caFile,
		"--resolve", fmt.Sprintf("%s:%d:127.0.0.1", name, port)}, args...)
	argv = append(argv, fmt.Sprintf("https://%s:%d/", name, port))
	cmd := exec.CommandContext(ctx, "curl", argv...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	r := curlResult{stdout: stdout.String(), stderr: stderr.String()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		r.code = exit.ExitCode()
	default:
		tb.Fatalf("curl %s: %v", strings.Join(argv, " "), err)
	}
	return r
}

// info decodes the gateway's answer.
func (r curlResult) info(tb testing.TB) connInfo {
	tb.Helper()
	if r.code != 0 {
		tb.Fatalf("curl exit %d, want 0: %s", r.code, r.stderr)
	}
	var ci connInfo
	if err := json.Unmarshal([]byte(r.stdout), &ci); err != nil {
		tb.Fatalf("gateway answer %q is not the JSON connection description: %v", r.stdout, err)
	}
	return ci
}
