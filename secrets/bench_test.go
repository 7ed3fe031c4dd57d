package secrets

import (
	"fmt"
	"testing"
)

// BenchmarkResolveCached is the cost of a reconcile's resolution of a
// reference already in the cache.
func BenchmarkResolveCached(b *testing.B) {
	c, _ := New(Options{Getenv: mapEnv(map[string]string{"K": string(make([]byte, 2048))})})
	if _, err := c.Resolve(b.Context(), "$env://K"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Resolve(b.Context(), "$env://K"); err != nil {
				b.Error(err)
			}
		}
	})
}

// BenchmarkRefreshRoundVault is one refresh round of 1,000 references
// (cert and key of 500 KV v2 secrets) against the in-process Vault double:
// 500 HTTP reads.
func BenchmarkRefreshRoundVault(b *testing.B) {
	d := newVaultDouble(b)
	c, _ := newVaultCache(b, d, map[string]string{"VAULT_TOKEN": "root-token"})
	for i := range 500 {
		p := fmt.Sprintf("secret/tls/e%d", i)
		d.put(p, map[string]any{"cert": "c", "key": "k"})
		for _, f := range []string{"cert", "key"} {
			if _, err := c.Resolve(b.Context(), "$secret://vault/"+p+"/"+f); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ResetTimer()
	for b.Loop() {
		if err := c.Refresh(b.Context()); err != nil {
			b.Fatal(err)
		}
	}
}
