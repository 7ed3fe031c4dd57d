package e2e

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"net"
	"testing"
	"time"
)

// The suite's own PKI: a CA that issues server and client leaves. It does
// not use certops/fixtures on purpose, so that the e2e package imports
// nothing from the project it tests.

// keyAlg names the algorithm of a generated key.
type keyAlg string

const (
	algECDSA keyAlg = "ecdsa" // P-256
	algRSA   keyAlg = "rsa"   // 2048 bits
)

// testCA is a self-signed certificate authority.
type testCA struct {
	cert    *x509.Certificate
	key     crypto.Signer
	certPEM []byte
}

// testLeaf is an issued certificate with its private key.
type testLeaf struct {
	cert    *x509.Certificate
	key     crypto.Signer
	certPEM []byte // the leaf alone: the value of an entity's cert field
	keyPEM  []byte // PKCS#8
	keyDER  []byte
}

func newKey(tb testing.TB, alg keyAlg) crypto.Signer {
	tb.Helper()
	var (
		k   crypto.Signer
		err error
	)
	switch alg {
	case algECDSA:
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case algRSA:
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		tb.Fatalf("newKey(%q): unknown algorithm", alg)
	}
	if err != nil {
		tb.Fatalf("newKey(%q): %v", alg, err)
	}
	return k
}

func randomSerial(tb testing.TB) *big.Int {
	tb.Helper()
	s, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		tb.Fatalf("serial: %v", err)
	}
	return s.Add(s, big.NewInt(1))
}

func base64Std(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func pemBlock(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

// newCA returns a fresh ECDSA certificate authority named cn.
func newCA(tb testing.TB, cn string) *testCA {
	tb.Helper()
	key := newKey(tb, algECDSA)
	tmpl := &x509.Certificate{
		SerialNumber:          randomSerial(tb),
		Subject:               pkix.Name{Organization: []string{"certops e2e"}, CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		tb.Fatalf("newCA(%q): %v", cn, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatalf("newCA(%q): %v", cn, err)
	}
	return &testCA{cert: cert, key: key, certPEM: pemBlock("CERTIFICATE", der)}
}

// leafOptions shape an issued leaf.
type leafOptions struct {
	client    bool          // a client certificate (ExtKeyUsageClientAuth) instead of a server one
	key       crypto.Signer // reuse this key instead of generating one
	ips       []net.IP      // IP address SANs
	notBefore time.Time
	notAfter  time.Time
}

// issue returns a leaf for cn with the DNS names sans, signed by ca.
func (ca *testCA) issue(tb testing.TB, alg keyAlg, cn string, sans []string, opts ...leafOptions) *testLeaf {
	tb.Helper()
	var o leafOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	key := o.key
	if key == nil {
		key = newKey(tb, alg)
	}
	if o.notBefore.IsZero() {
		o.notBefore = time.Now().Add(-time.Hour)
	}
	if o.notAfter.IsZero() {
		o.notAfter = time.Now().Add(365 * 24 * time.Hour)
	}
	usage := x509.KeyUsageDigitalSignature
	if _, ok := key.(*rsa.PrivateKey); ok {
		usage |= x509.KeyUsageKeyEncipherment
	}
	eku := x509.ExtKeyUsageServerAuth
	if o.client {
		eku = x509.ExtKeyUsageClientAuth
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(tb),
		Subject:      pkix.Name{CommonName: cn},
		DNSNames:     sans,
		IPAddresses:  o.ips,
		NotBefore:    o.notBefore,
		NotAfter:     o.notAfter,
		KeyUsage:     usage,
		ExtKeyUsage:  []x509.ExtKeyUsage{eku},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		tb.Fatalf("issue(%q): %v", cn, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		tb.Fatalf("issue(%q): %v", cn, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		tb.Fatalf("issue(%q): %v", cn, err)
	}
	return &testLeaf{cert: cert, key: key, certPEM: pemBlock("CERTIFICATE", der), keyPEM: pemBlock("PRIVATE KEY", keyDER), keyDER: keyDER}
}
