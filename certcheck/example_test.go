package certcheck_test

import (
	"crypto/x509"
	"fmt"
	"log"

	"certops/certcheck"
	"certops/fixtures"
)

type fatal struct{}

func (fatal) Helper()                        {}
func (fatal) Fatalf(format string, a ...any) { log.Fatalf(format, a...) }

// A chain with an RSA-1024 leaf, checked with its private root pinned: the
// weak key is an error, which a policy can make a warning.
func ExampleChecker_Entity() {
	root := fixtures.NewRootCA(fatal{}, "Example Root")
	leaf := root.CustomLeaf(fatal{}, fixtures.CustomLeaf{LeafOptions: fixtures.LeafOptions{DNSNames: []string{"shop.example.com"}},
		PrivateKey: fixtures.RSAKey(fatal{}, 1024)})
	e := certcheck.Entity{Name: "shop", Chains: []certcheck.Chain{{Field: "cert", Certs: []*x509.Certificate{leaf.Cert}}}}
	for _, policy := range []certcheck.Policy{nil, {certcheck.WeakKey: certcheck.SeverityWarning}} {
		c := certcheck.New(certcheck.Options{Public: x509.NewCertPool(), Private: []*x509.Certificate{root.Cert}, Policy: policy})
		for _, f := range c.Entity(e) {
			fmt.Println(f)
		}
	}
	// Output:
	// shop: cert: error: the leaf has an RSA-1024 key; use at least RSA-2048 or ECDSA P-256 [weak_key]
	// shop: cert: warning: the leaf has an RSA-1024 key; use at least RSA-2048 or ECDSA P-256 [weak_key]
}
