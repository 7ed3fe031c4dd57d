package main

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"certops/fixtures"
	"certops/gateway"
	"certops/reconciler"
	"certops/reconciler/admin"
)

func TestInventoryCommand(t *testing.T) {
	root := fixtures.NewRootCA(t, "inventory CA")
	year := time.Now().AddDate(1, 0, 0)
	shop := root.Leaf(t, fixtures.LeafOptions{DNSNames: []string{"shop.example.com"}, NotAfter: year})
	api := root.Leaf(t, fixtures.LeafOptions{DNSNames: []string{"api.example.com"}, NotAfter: year.Add(-30 * 24 * time.Hour)})
	keys := [][]byte{shop.KeyPEM, api.KeyPEM}
	repo := fixtures.NewGitRepo(t)
	first := repo.Commit(t, "add shop", map[string]string{
		"shop.yaml": fixtures.EntityYAML(fixtures.Entity{Name: "shop", SNIs: []string{"shop.example.com"}, Chains: []*fixtures.Leaf{shop},
			Labels: map[string]string{"team": "storefront"}}),
		"ca.roots.pem": string(root.CertPEM),
	})
	second := repo.Commit(t, "add api", map[string]string{
		"api.yaml": fixtures.EntityYAML(fixtures.Entity{Name: "api", SNIs: []string{"api.example.com"}, Chains: []*fixtures.Leaf{api},
			Labels: map[string]string{"team": "api"}}),
	})

	code, out, stderr := runCLI(t, keys, "inventory", repo.Work, "--format", "json")
	if code != 0 {
		t.Fatalf("inventory --format json: exit %d\n%s", code, stderr)
	}
	var doc struct {
		Certificates []struct {
			Entity, Commit, Trust, Owner string
		}
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"shop": first, "api": second}
	for _, c := range doc.Certificates {
		if c.Commit != want[c.Entity] || c.Trust != "private" {
			t.Errorf("inventory %s: commit %s, trust %s; want %s, private (pinned by ca.roots.pem)", c.Entity, c.Commit, c.Trust, want[c.Entity])
		}
	}
	if len(doc.Certificates) != 2 {
		t.Errorf("inventory listed %d certificates, want 2:\n%s", len(doc.Certificates), out)
	}
	for _, f := range []string{"text", "csv", "markdown"} {
		code, out, stderr := runCLI(t, keys, "inventory", repo.Work, "--format", f)
		if code != 0 || !strings.Contains(out, "shop.example.com") || !strings.Contains(out, "storefront") {
			t.Errorf("inventory --format %s: exit %d\n%s%s", f, code, out, stderr)
		}
		code, out, stderr = runCLI(t, keys, "inventory", repo.Work, "--forecast", "60w", "--format", f)
		if code != 0 || !strings.Contains(out, "storefront") || !strings.Contains(out, "api") {
			t.Errorf("inventory --forecast 60w --format %s: exit %d\n%s%s", f, code, out, stderr)
		}
	}

	// --live reads a running daemon's admin API.
	gw := gateway.New(gateway.Options{})
	rec := reconciler.New(reconciler.Options{FS: os.DirFS(repo.Work), Gateway: gw})
	if att, err := rec.ReconcileNow(t.Context()); err != nil || att.Result != reconciler.ResultApplied {
		t.Fatalf("reconcile: %+v, %v", att, err)
	}
	srv := httptest.NewServer(admin.New(admin.Options{Reconciler: rec}).Handler())
	defer srv.Close()
	code, out, stderr = runCLI(t, keys, "inventory", "--live", srv.URL, "--format", "csv")
	if code != 0 || !strings.Contains(out, "shop,cert,shop.example.com,shop.yaml") || !strings.Contains(out, "ECDSA P-256") {
		t.Errorf("inventory --live: exit %d\n%s%s", code, out, stderr)
	}

	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--format", "xml"}, "--format"},
		{[]string{"--forecast", "0w"}, "--forecast"},
		{[]string{"--fleet", "prod", "--nats", "nats://127.0.0.1:1", "--timeout", "100ms"}, "nats://127.0.0.1:1: dial tcp 127.0.0.1:1: connect: connection refused"},
		{[]string{"--live", srv.URL, repo.Work}, "not both"},
		{[]string{"--roots", "/nonexistent.pem"}, "--roots"},
		{[]string{"/nonexistent-repo"}, "stat /nonexistent-repo: no such file or directory"},
		{[]string{filepath.Join(repo.Work, "shop.yaml")}, "shop.yaml is not a folder"},
	} {
		code, _, stderr := runCLI(t, keys, append([]string{"inventory"}, tt.args...)...)
		if code != 1 || !strings.Contains(stderr, tt.want) {
			t.Errorf("inventory %v: exit %d, stderr %q; want 1 and %q", tt.args, code, stderr, tt.want)
		}
	}
}
