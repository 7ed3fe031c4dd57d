package examples

import (
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"path"
	"time"

	"certops/source"
)

// CRLPath is where `certops run` serves the demo CRL on its admin
// listener while it serves the embedded example.
const CRLPath = "/examples/ca.crl"

// DemoValidity is the lifetime of the leaves that NewDemo issues: 90
// days, as public CAs issue them (testssl.sh flags anything over 398).
const DemoValidity = 90 * 24 * time.Hour

// demoHeader heads every entity file of the in-memory example.
const demoHeader = "# EXAMPLE KEY MATERIAL, issued in memory by `certops run` at start, from the demo CA\n" +
	"# (examples/basic/ca.pem, whose key examples/ca-key.pem is published). Never written to disk.\n"

// Demo is the embedded example as `certops run` serves it without
// --source: the repository of examples/basic with its leaves issued at
// start by the demo CA, valid for [DemoValidity] and naming the demo CRL,
// which the Demo serves. Each start issues new keys and leaves, so a
// restarted demo serves new certificates; a demo left running for longer
// than DemoValidity minus --warn-within (60 days by default) reports the
// expiry warning, like any repository, and its leaves expire after 90
// days: restart it. A Demo is immutable and safe for concurrent use.
type Demo struct {
	// FS is the repository, files under basic/ as in [Basic]: the entity
	// files issued at start, and the rest of examples/basic (ca.pem,
	// ca.roots.pem, checks.cue) as checked in. It lives in memory only.
	// The daemon reads it through the same source, loader and checks as
	// any repository (issue 18: what validate approves is what is served).
	FS fs.FS
	// CRLURL is the CRL distribution point of every leaf, where the
	// admin listener serves the demo CRL (see [CRLURL]); "" when the
	// admin address does not name a port (":0"), in which case the
	// leaves carry none.
	CRLURL string
	// NotBefore and NotAfter bound every leaf.
	NotBefore, NotAfter time.Time

	crl []byte // DER
}

// NewDemo issues the embedded example for a daemon whose admin API listens
// on adminAddr (the --admin flag), at now: fresh keys, leaves of the demo
// CA valid for DemoValidity from an hour before now (clock skew), and the
// demo CRL, signed by the demo CA, which lists nothing and is valid as
// long as the leaves. It writes nothing to disk.
func NewDemo(adminAddr string, now time.Time) (*Demo, error) {
	ca, key, err := DemoCA()
	if err != nil {
		return nil, err
	}
	d := &Demo{CRLURL: CRLURL(adminAddr), NotBefore: now.Add(-time.Hour).Truncate(time.Second)}
	d.NotAfter = d.NotBefore.Add(DemoValidity)
	issued, err := IssueBasic(IssueOptions{CA: ca, Key: key, NotBefore: d.NotBefore, NotAfter: d.NotAfter,
		CRLURL: d.CRLURL, Header: demoHeader})
	if err != nil {
		return nil, err
	}
	// The CRL number only grows across restarts (RFC 5280 5.2.3).
	d.crl, err = x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:     big.NewInt(now.Unix()),
		ThisUpdate: d.NotBefore,
		NextUpdate: d.NotAfter,
	}, ca, key)
	if err != nil {
		return nil, fmt.Errorf("sign the demo CRL: %w", err)
	}
	files := map[string][]byte{}
	err = fs.WalkDir(Basic, "basic", func(p string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		if _, ok := issued[path.Base(p)]; ok {
			return nil // replaced by its short-lived form below
		}
		files[p], err = fs.ReadFile(Basic, p)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("read the embedded example: %w", err)
	}
	for name, content := range issued {
		files["basic/"+name] = content
	}
	ids := make(map[string]string, len(files))
	for p, content := range files {
		sum := sha256.Sum256(content)
		ids[p] = hex.EncodeToString(sum[:])
	}
	d.FS = source.NewTree("", ids, func(name string) ([]byte, error) {
		if b, ok := files[name]; ok {
			return b, nil
		}
		return nil, &fs.PathError{Op: "read", Path: name, Err: fs.ErrNotExist}
	})
	return d, nil
}

// ServeHTTP answers with the demo CRL, DER-encoded (RFC 5280 4.2.1.13:
// an http URI names a DER CRL). It is a demo CRL: it revokes nothing.
func (d *Demo) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/pkix-crl")
	w.Header().Set("Cache-Control", "max-age=3600")
	// The status line is out; a failed write means the client left.
	_, _ = w.Write(d.crl)
}

// Routes returns the admin routes of the demo: GET CRLPath, the demo CRL.
func (d *Demo) Routes() map[string]http.Handler {
	return map[string]http.Handler{"GET " + CRLPath: d}
}

// CRLURL returns the URL of the demo CRL on an admin API that listens on
// adminAddr ("host:port"): an unspecified or empty host (":9180",
// "0.0.0.0:9180", "[::]:9180") is named 127.0.0.1, the address every
// local client reaches. It returns "" when adminAddr names no fixed port.
func CRLURL(adminAddr string) string {
	host, port, err := net.SplitHostPort(adminAddr)
	if err != nil || port == "" || port == "0" {
		return ""
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return (&url.URL{Scheme: "http", Host: net.JoinHostPort(host, port), Path: CRLPath}).String()
}

// DemoCA returns the demo CA: the certificate of examples/basic/ca.pem and
// its published key, examples/ca-key.pem. The CA is name-constrained to the
// example names (example.com, example.net, certops.invalid and their
// subdomains; no IP address) with a path length of 0, so that its published
// key cannot issue a certificate that verifies for any other name.
func DemoCA() (*x509.Certificate, crypto.Signer, error) {
	ca, err := Basic.ReadFile("basic/ca.pem")
	if err != nil {
		return nil, nil, fmt.Errorf("demo CA: %w", err)
	}
	block, _ := pem.Decode(ca)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, nil, errors.New("demo CA: examples/basic/ca.pem holds no certificate")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("demo CA: examples/basic/ca.pem: %w", err)
	}
	// pem.Decode skips the comment lines above the block.
	keyBlock, _ := pem.Decode(caKeyPEM)
	if keyBlock == nil || keyBlock.Type != "PRIVATE KEY" {
		return nil, nil, errors.New("demo CA: examples/ca-key.pem holds no PKCS#8 private key")
	}
	parsed, err := x509.ParsePKCS8PrivateKey(keyBlock.Bytes)
	if err != nil {
		return nil, nil, fmt.Errorf("demo CA: examples/ca-key.pem: %w", err)
	}
	key, ok := parsed.(crypto.Signer)
	if !ok || !publicKeyEqual(key.Public(), cert.PublicKey) {
		return nil, nil, errors.New("demo CA: examples/ca-key.pem is not the key of examples/basic/ca.pem (run go generate ./examples)")
	}
	return cert, key, nil
}

// publicKeyEqual reports whether a and b are the same public key.
func publicKeyEqual(a, b crypto.PublicKey) bool {
	k, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && k.Equal(b)
}
