package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// pki is the benchmark's certificates: one root CA and one ECDSA P-256
// leaf per entity, named e<i>.bench.example.
type pki struct {
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	serial int64
	valid  time.Duration // of each leaf
}

type leaf struct {
	certPEM, keyPEM []byte
	serial          *big.Int
}

func newPKI(valid time.Duration) (*pki, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "certops peers bench CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(valid + 48*time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &pki{ca: ca, caKey: key, serial: 1, valid: valid}, nil
}

// leaf issues a certificate for name with a fresh P-256 key.
func (p *pki) leaf(name string) (leaf, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return leaf{}, err
	}
	p.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial),
		Subject:      pkix.Name{CommonName: name},
		DNSNames:     []string{name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(p.valid),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		return leaf{}, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return leaf{}, err
	}
	return leaf{
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
		serial:  tmpl.SerialNumber,
	}, nil
}

func name(i int) string { return fmt.Sprintf("e%d.bench.example", i) }

// certSet is one set of n certificates written in the forms each server
// reads: entity files (certops), combined PEM files and a crt-list
// (HAProxy), certificate and key files (nginx).
type certSet struct {
	n      int
	dir    string
	leaves []leaf
}

func writeSet(p *pki, dir string, n int) (*certSet, error) {
	s := &certSet{n: n, dir: dir, leaves: make([]leaf, n)}
	for _, sub := range []string{"entities", "pem"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			return nil, err
		}
	}
	var crtList strings.Builder
	for i := range n {
		l, err := p.leaf(name(i))
		if err != nil {
			return nil, err
		}
		s.leaves[i] = l
		if err := s.write(i, l); err != nil {
			return nil, err
		}
		fmt.Fprintf(&crtList, "%s\n", s.pemPath(i))
	}
	if err := os.WriteFile(filepath.Join(dir, "crt-list"), []byte(crtList.String()), 0o644); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *certSet) entityPath(i int) string {
	return filepath.Join(s.dir, "entities", entityFile(i))
}

func entityFile(i int) string { return fmt.Sprintf("e%d.yaml", i) }
func (s *certSet) pemPath(i int) string {
	return filepath.Join(s.dir, "pem", fmt.Sprintf("e%d.pem", i))
}
func (s *certSet) crtPath(i int) string {
	return filepath.Join(s.dir, "pem", fmt.Sprintf("e%d.crt", i))
}
func (s *certSet) keyPath(i int) string {
	return filepath.Join(s.dir, "pem", fmt.Sprintf("e%d.key", i))
}

// write writes leaf l of entity i in every form.
func (s *certSet) write(i int, l leaf) error {
	if err := writeEntity(filepath.Join(s.dir, "entities"), i, l); err != nil {
		return err
	}
	return s.writePEM(i, l)
}

// linkEntities makes dir a folder of the set's entity files, hard links
// that cost no copy: a daemon that watches it sees the rotations made in
// it, and none of those made for another daemon (writeEntity replaces a
// file, so the other links keep the old one).
func (s *certSet) linkEntities(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for i := range s.n {
		if err := os.Link(s.entityPath(i), filepath.Join(dir, entityFile(i))); err != nil {
			return err
		}
	}
	return nil
}

// writeEntity writes leaf l of entity i into the entity folder dir, as
// certops reads it. The file is written aside (beside dir, outside the
// watched folder) and renamed over the old one, as an editor or a deploy
// tool would.
func writeEntity(dir string, i int, l leaf) error {
	var e strings.Builder
	fmt.Fprintf(&e, "name: e%d\nsnis:\n  - %q\ncert: |\n", i, name(i))
	indent(&e, l.certPEM)
	e.WriteString("key: |\n")
	indent(&e, l.keyPEM)
	tmp := filepath.Join(filepath.Dir(dir), fmt.Sprintf("e%d.yaml.new", i))
	if err := os.WriteFile(tmp, []byte(e.String()), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, entityFile(i)))
}

// writePEM writes leaf l of entity i as HAProxy and nginx read it.
func (s *certSet) writePEM(i int, l leaf) error {
	both := append(append([]byte{}, l.certPEM...), l.keyPEM...)
	if err := os.WriteFile(s.pemPath(i), both, 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(s.crtPath(i), l.certPEM, 0o644); err != nil {
		return err
	}
	return os.WriteFile(s.keyPath(i), l.keyPEM, 0o600)
}

func indent(b *strings.Builder, pemText []byte) {
	for _, line := range strings.SplitAfter(strings.TrimRight(string(pemText), "\n"), "\n") {
		b.WriteString("  ")
		b.WriteString(strings.TrimRight(line, "\n"))
		b.WriteString("\n")
	}
}
