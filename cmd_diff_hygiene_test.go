package main

import (
	"crypto/elliptic"
	"strings"
	"testing"
	"time"

	"certops/fixtures"
)

// TestDiffKeyReusedAcrossRenewal renews a certificate in a commit without
// a new key, then with one: diff flags the first renewal only.
func TestDiffKeyReusedAcrossRenewal(t *testing.T) {
	ca := fixtures.NewRootCA(t, "renewal CA")
	key := fixtures.ECDSAKey(t, elliptic.P256())
	issue := func(reuse bool) *fixtures.Leaf {
		opts := fixtures.CustomLeaf{LeafOptions: fixtures.LeafOptions{DNSNames: []string{"shop.example.com"}, NotAfter: time.Now().AddDate(0, 6, 0)}}
		if reuse {
			opts.PrivateKey = key
		}
		return ca.CustomLeaf(t, opts)
	}
	first, renewed, rekeyed := issue(true), issue(true), issue(false)
	keys := [][]byte{first.KeyPEM, rekeyed.KeyPEM}
	entity := func(l *fixtures.Leaf) map[string]string {
		return map[string]string{"shop.yaml": fixtures.EntityYAML(fixtures.Entity{Name: "shop", SNIs: []string{"shop.example.com"}, Chains: []*fixtures.Leaf{l}})}
	}
	repo := fixtures.NewGitRepo(t)
	c1 := repo.Commit(t, "issue", entity(first))
	c2 := repo.Commit(t, "renew with the same key", entity(renewed))
	c3 := repo.Commit(t, "renew with a new key", entity(rekeyed))
	// The policy makes a reused key an error; the next renewal reuses the
	// key again.
	policy := entity(issue(true))
	policy["checks.cue"] = "package certops\n\n#Checks: key_reused_on_renewal: \"error\"\n"
	c4 := repo.Commit(t, "policy: a renewal needs a new key", policy)
	c5 := repo.Commit(t, "renew with the same key again", entity(issue(true)))
	// A head with a weak key is refused like an invalid revision.
	weak := ca.CustomLeaf(t, fixtures.CustomLeaf{LeafOptions: fixtures.LeafOptions{DNSNames: []string{"shop.example.com"}, NotAfter: time.Now().AddDate(0, 6, 0)},
		PrivateKey: fixtures.RSAKey(t, 1024)})
	keys = append(keys, weak.KeyPEM)
	c6 := repo.Commit(t, "a weak key", entity(weak))

	tests := []struct {
		name       string
		base, head string
		format     string
		want       string // "" for no finding
	}{
		{"same key", c1, c2, "text", "shop.yaml: shop: cert: warning: key reused across renewal"},
		{"same key, markdown", c1, c2, "markdown", "key reused across renewal"},
		{"new key", c2, c3, "text", ""},
		{"policy makes it an error", c4, c5, "text", "shop.yaml: shop: cert: error: key reused across renewal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, stderr := runCLI(t, keys, "diff", "--repo", repo.Work, "--base", tt.base, "--head", tt.head, "--format", tt.format)
			if wantCode := map[bool]int{false: 0, true: 1}[strings.Contains(tt.want, ": error: ")]; code != wantCode {
				t.Fatalf("diff: exit %d, want %d\n%s%s", code, wantCode, out, stderr)
			}
			if tt.want == "" {
				if strings.Contains(stderr+out, "reused") {
					t.Errorf("diff flags a renewal with a new key:\n%s%s", out, stderr)
				}
				return
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("diff stderr = %q, want %q", stderr, tt.want)
			}
			if tt.format == "markdown" && !strings.Contains(out, "#### Certificate hygiene") {
				t.Errorf("diff --format markdown lacks the hygiene section:\n%s", out)
			}
		})
	}
	code, out, stderr := runCLI(t, keys, "diff", "--repo", repo.Work, "--base", c5, "--head", c6)
	if code != 1 || !strings.Contains(stderr, "the leaf has an RSA-1024 key") || !strings.Contains(stderr, "[weak_key]") {
		t.Errorf("diff to a head with a weak key: exit %d, want 1 and weak_key\n%s%s", code, out, stderr)
	}
}
