//go:build ignore

// gen writes the demo CA (basic/ca.pem, basic/ca.roots.pem and its
// published key ca-key.pem) and the checked-in entity files of
// examples/basic, whose leaves are valid for 100 years. Run it with
// `go generate ./examples`. The entities are those of examples.IssueBasic,
// which `certops run` also issues in memory at start with 90-day leaves.
//
// The keys are example keys, published on purpose: the CA is
// name-constrained to the example names with a path length of 0, so its
// key cannot issue a certificate that verifies for any other name.
package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"log"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"certops/examples"
)

// permitted are the names the demo CA may issue for: the domains of the
// example entities and their subdomains (RFC 5280 4.2.1.10).
var permitted = []string{"example.com", "example.net", "certops.invalid"}

const banner = "# EXAMPLE KEY MATERIAL, published on purpose by examples/gen.go (go generate ./examples).\n" +
	"# Never serve these certificates or keys for a real name.\n"

func main() {
	from := time.Now().Add(-24 * time.Hour).Truncate(24 * time.Hour)
	until := from.AddDate(100, 0, 0)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		log.Fatal(err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		log.Fatal(err)
	}
	_, all4, _ := net.ParseCIDR("0.0.0.0/0")
	_, all6, _ := net.ParseCIDR("::/0")
	tmpl := &x509.Certificate{
		SerialNumber:          serial.Add(serial, big.NewInt(1)),
		Subject:               pkix.Name{CommonName: "certops example CA", Organization: []string{"certops examples"}},
		NotBefore:             from,
		NotAfter:              until,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true, // no intermediate below the published key
		// Every name type Go issues is constrained: DNS names, e-mail
		// addresses and URIs to the example domains, IP addresses not at all.
		PermittedDNSDomainsCritical: true,
		PermittedDNSDomains:         permitted,
		PermittedEmailAddresses:     permitted,
		PermittedURIDomains:         permitted,
		ExcludedIPRanges:            []*net.IPNet{all4, all6},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		log.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		log.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		log.Fatal(err)
	}
	files, err := examples.IssueBasic(examples.IssueOptions{CA: ca, Key: key, NotBefore: from, NotAfter: until, Header: banner})
	if err != nil {
		log.Fatal(err)
	}
	caPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	files["ca.pem"] = caPEM
	files["ca.roots.pem"] = caPEM
	for name, content := range files {
		if err := os.WriteFile(filepath.Join("basic", name), content, 0o644); err != nil {
			log.Fatal(err)
		}
	}
	keyPEM := append([]byte("EXAMPLE KEY of the demo CA examples/basic/ca.pem, published on purpose by examples/gen.go.\n"+
		"The CA is name-constrained to "+fmt.Sprint(permitted)+" with a path length of 0.\n"),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})...)
	if err := os.WriteFile("ca-key.pem", keyPEM, 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Println("wrote basic and ca-key.pem")
}
