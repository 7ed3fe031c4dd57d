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
		lints.reset() // a leaf seen for the first time, as at a cold start
		c.Entity(e)
	}
}

// BenchmarkEntityCached is BenchmarkEntity for a leaf linted before: a
// wildcard served by many entities, or an entity validated again.
func BenchmarkEntityCached(b *testing.B) {
	root := fixtures.NewRootCA(b, "Bench Root")
	inter := root.Intermediate(b, "Bench Intermediate")
	leaf := inter.Server(b, "shop.example.com")
	c := New(Options{Public: x509.NewCertPool(), Private: []*x509.Certificate{root.Cert}})
	e := Entity{Name: "shop", Chains: []Chain{{Field: "cert", Certs: []*x509.Certificate{leaf.Cert, inter.Cert}}}}
	for b.Loop() {
		c.Entity(e)
	}
}

// BenchmarkLints is the zlint part alone, for a privately trusted leaf
// (the RFC lints), without the cache.
func BenchmarkLints(b *testing.B) {
	root := fixtures.NewRootCA(b, "Bench Root")
	leaf := root.Server(b, "shop.example.com")
	for b.Loop() {
		if _, err := lintLeaf(leaf.Cert, false); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLintsPublic is BenchmarkLints for a publicly trusted leaf
// (every lint).
func BenchmarkLintsPublic(b *testing.B) {
	root := fixtures.NewRootCA(b, "Bench Root")
	leaf := root.Server(b, "shop.example.com")
	for b.Loop() {
		if _, err := lintLeaf(leaf.Cert, true); err != nil {
			b.Fatal(err)
		}
	}
}
