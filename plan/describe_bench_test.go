package plan

import (
	"os"
	"testing"

	"certops/fixtures"
	"certops/schema"
)

// BenchmarkDescribeTrust measures what the trust verdict adds to a
// description when the hygiene checks ran (the daemon), against the same
// entity described without them, and against validating it with them.
func BenchmarkDescribeTrust(b *testing.B) {
	root := fixtures.NewRootCA(b, "bench root")
	inter := root.Intermediate(b, "bench intermediate")
	leaf := inter.Server(b, "shop.example.com")
	dir := fixtures.WriteFiles(b, map[string]string{
		"shop.yaml":    fixtures.EntityYAML(fixtures.Entity{Name: "shop", SNIs: []string{"shop.example.com"}, Chains: []*fixtures.Leaf{leaf}}),
		"ca.roots.pem": string(root.CertPEM),
	})
	load := func(b *testing.B, h *schema.Hygiene) *schema.Entity {
		res, err := schema.Load(os.DirFS(dir), schema.Options{Hygiene: h})
		if err != nil || len(res.Entities) != 1 {
			b.Fatalf("load: %v", err)
		}
		return res.Entities[0]
	}
	for _, bc := range []struct {
		name string
		h    *schema.Hygiene
	}{{"without checks", nil}, {"with checks", &schema.Hygiene{}}} {
		e := load(b, bc.h)
		b.Run("describe "+bc.name, func(b *testing.B) {
			for b.Loop() {
				Describe(e, nil)
			}
		})
	}
	b.Run("validate with checks", func(b *testing.B) {
		for b.Loop() {
			load(b, &schema.Hygiene{})
		}
	})
}
