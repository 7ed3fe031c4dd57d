package certcheck

import (
	"crypto/x509"
	"testing"

	"certops/fixtures"
)

// BenchmarkEntity measures the checks of one entity of a leaf and an
// intermediate, against a pinned private root (what validation runs per
// chain).
func BenchmarkEntity(b *testing.B) {
	root := fixtures.NewRootCA(b, "Bench Root")
	inter := root.Intermediate(b, "Bench Intermediate")
	leaf := inter.Server(b, "shop.example.com")
	c := New(Options{Public: x509.NewCertPool(), Private: []*x509.Certificate{root.Cert}})
	e := Entity{Name: "shop", Chains: []Chain{{Field: "cert", Certs: []*x509.Certificate{leaf.Cert, inter.Cert}}}}
	for b.Loop() {
		c.Entity(e)
	}
}

// BenchmarkLints is the zlint part alone.
func BenchmarkLints(b *testing.B) {
	root := fixtures.NewRootCA(b, "Bench Root")
	leaf := root.Server(b, "shop.example.com")
	for b.Loop() {
		if _, err := runLints(leaf.Cert, false); err != nil {
			b.Fatal(err)
		}
	}
}
