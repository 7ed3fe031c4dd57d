package main

import (
	"crypto/elliptic"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"certops/fixtures"
)

// refKeyYAML is the entity file of name serving leaf, with its key behind
// the secret reference ref instead of written out.
func refKeyYAML(name string, leaf *fixtures.Leaf, ref string) string {
	full := fixtures.EntityYAML(fixtures.Entity{Name: name, SNIs: leaf.Cert.DNSNames, Chains: []*fixtures.Leaf{leaf}})
	head, _, _ := strings.Cut(full, "key: |")
	return head + "key: " + ref + "\n"
}

// TestKeyReuseBehindReferences: two entities whose keys are $env://
// references to one key are a key_reuse warning naming both, found by
// their certificates' public keys without resolving the references.
func TestKeyReuseBehindReferences(t *testing.T) {
	ca := fixtures.NewRootCA(t, "reuse CA")
	key := fixtures.ECDSAKey(t, elliptic.P256())
	issue := func(name string) *fixtures.Leaf {
		return ca.CustomLeaf(t, fixtures.CustomLeaf{PrivateKey: key,
			LeafOptions: fixtures.LeafOptions{DNSNames: []string{name}, NotAfter: time.Now().AddDate(0, 6, 0)}})
	}
	shop, api, own := issue("shop.example.com"), issue("api.example.com"), ca.Server(t, "own.example.com")
	keys := [][]byte{shop.KeyPEM, own.KeyPEM}
	dir := t.TempDir()
	for name, body := range map[string]string{
		"shop.yaml":     refKeyYAML("shop", shop, "$env://SHOP_KEY"),
		"api.yaml":      refKeyYAML("api", api, "$env://API_KEY"),
		"own.yaml":      refKeyYAML("own", own, "$env://OWN_KEY"),
		"ca.roots.pem":  string(ca.CertPEM),
		"unrelated.txt": "not an entity\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	code, out, stderr := runCLI(t, keys, "validate", dir)
	if code != 0 {
		t.Fatalf("validate: exit %d, want 0 (a warning)\n%s%s", code, out, stderr)
	}
	all := out + stderr
	for _, want := range []string{
		"shop.yaml:", "is also the key of entity api", "api.yaml:", "is also the key of entity shop", "[key_reuse]",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("validate output lacks %q:\n%s", want, all)
		}
	}
	if strings.Contains(all, "entity own") || strings.Count(all, "[key_reuse]") != 2 {
		t.Errorf("validate reports key reuse beyond shop and api:\n%s", all)
	}

	// The policy makes it an error.
	if err := os.WriteFile(filepath.Join(dir, "checks.cue"), []byte("package certops\n\n#Checks: key_reuse: \"error\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, out, stderr := runCLI(t, keys, "validate", dir); code != 1 || !strings.Contains(out+stderr, "[key_reuse]") {
		t.Errorf("validate with key_reuse: error: exit %d, want 1 and key_reuse\n%s%s", code, out, stderr)
	}
}

// TestDiffKeyReusedBehindReference: a certificate renewed in a commit
// while its key stays behind the same (or a renamed) secret reference to
// the same key is flagged; a renewal with a new key is not.
func TestDiffKeyReusedBehindReference(t *testing.T) {
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
	repo := fixtures.NewGitRepo(t)
	c1 := repo.Commit(t, "issue", map[string]string{"shop.yaml": refKeyYAML("shop", first, "$env://SHOP_KEY")})
	c2 := repo.Commit(t, "renew, same key", map[string]string{"shop.yaml": refKeyYAML("shop", renewed, "$env://SHOP_KEY")})
	c3 := repo.Commit(t, "renew, same key under a new name", map[string]string{"shop.yaml": refKeyYAML("shop", issue(true), "$env://SHOP_KEY_2026")})
	c4 := repo.Commit(t, "renew with a new key", map[string]string{"shop.yaml": refKeyYAML("shop", rekeyed, "$env://SHOP_KEY_NEW")})
	for _, tt := range []struct {
		name       string
		base, head string
		flagged    bool
	}{
		{"same reference", c1, c2, true},
		{"renamed reference", c2, c3, true},
		{"new key", c3, c4, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, out, stderr := runCLI(t, keys, "diff", "--repo", repo.Work, "--base", tt.base, "--head", tt.head)
			if code != 0 {
				t.Fatalf("diff: exit %d\n%s%s", code, out, stderr)
			}
			got := strings.Contains(stderr, "shop.yaml: shop: cert: warning: key reused across renewal")
			if got != tt.flagged {
				t.Errorf("diff flags key reuse = %t, want %t\n%s%s", got, tt.flagged, out, stderr)
			}
		})
	}
}
