//go:build ignore

// gen writes the example repository examples/basic: four SSL entities and
// the CA that issued them, valid for 100 years. Run it with
// `go generate ./examples`. Its keys are example keys, published on purpose:
// never serve them for a real name.
package main

import (
	"fmt"
	"log"
	"os"
	"path/filepath"
	"time"

	"certops/fixtures"
)

type fatal struct{}

func (fatal) Helper()                        {}
func (fatal) Fatalf(format string, a ...any) { log.Fatalf(format, a...) }

const banner = "# EXAMPLE KEY MATERIAL, published on purpose by examples/gen.go (go generate ./examples).\n" +
	"# Never serve these certificates or keys for a real name.\n"

func main() {
	tb := fatal{}
	from := time.Now().Add(-24 * time.Hour).Truncate(24 * time.Hour)
	until := from.AddDate(100, 0, 0)
	ca := fixtures.NewRootCAValidity(tb, "certops example CA", from, until)
	leaf := func(kt fixtures.KeyType, names ...string) *fixtures.Leaf {
		return ca.Leaf(tb, fixtures.LeafOptions{DNSNames: names, Key: kt, NotBefore: from, NotAfter: until})
	}
	files := map[string]string{
		"shop.yaml": fixtures.EntityYAML(fixtures.Entity{
			Name:   "shop-example-com",
			SNIs:   []string{"shop.example.com"},
			Chains: []*fixtures.Leaf{leaf(fixtures.ECDSA, "shop.example.com")},
			Labels: map[string]string{"team": "storefront"},
		}),
		"wildcard.yaml": fixtures.EntityYAML(fixtures.Entity{
			Name:   "wildcard-example-com",
			SNIs:   []string{"*.example.com"},
			Chains: []*fixtures.Leaf{leaf(fixtures.ECDSA, "*.example.com")},
			Labels: map[string]string{"team": "platform"},
		}),
		"api-dual.yaml": fixtures.EntityYAML(fixtures.Entity{
			Name: "api-example-net",
			SNIs: []string{"api.example.net"},
			Chains: []*fixtures.Leaf{
				leaf(fixtures.RSA, "api.example.net"),
				leaf(fixtures.ECDSA, "api.example.net"),
			},
			Labels: map[string]string{"team": "api"},
		}),
		"default.yaml": fixtures.EntityYAML(fixtures.Entity{
			Name:   "default",
			SNIs:   []string{"*"},
			Chains: []*fixtures.Leaf{leaf(fixtures.ECDSA, "default.certops.invalid")},
			Labels: map[string]string{"team": "platform"},
		}),
	}
	dir := "basic"
	if err := os.MkdirAll(dir, 0o755); err != nil {
		log.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(banner+content), 0o644); err != nil {
			log.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), ca.CertPEM, 0o644); err != nil {
		log.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.roots.pem"), ca.CertPEM, 0o644); err != nil {
		log.Fatal(err)
	}
	fmt.Println("wrote", dir)
}
