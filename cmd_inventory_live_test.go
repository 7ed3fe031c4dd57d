package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"certops/fixtures"
	"certops/gateway"
	"certops/reconciler"
	"certops/reconciler/admin"
	"certops/schema"
	"certops/secrets"
)

// TestInventoryLiveIssuerAndTrust: through a running reconciler and its
// admin API, inventory --live shows each chain's issuer and the trust
// verdict the daemon's hygiene checks gave: private for a root the
// repository pins, untrusted for one it does not; nothing there is a key.
func TestInventoryLiveIssuerAndTrust(t *testing.T) {
	pinned := fixtures.NewRootCA(t, "pinned CA")
	other := fixtures.NewRootCA(t, "unpinned CA")
	shop := pinned.Server(t, "shop.example.com")
	api := other.Server(t, "api.example.com")
	vaulted := pinned.Server(t, "vault.example.com")
	t.Setenv("INVENTORY_VAULT_KEY", string(vaulted.KeyPEM))
	// refcert's certificate is a reference too: the daemon judges it on
	// the resolved material.
	refcert := pinned.Server(t, "ref.example.com")
	t.Setenv("INVENTORY_REF_CERT", string(refcert.ChainPEM))
	t.Setenv("INVENTORY_REF_KEY", string(refcert.KeyPEM))
	keys := [][]byte{shop.KeyPEM, api.KeyPEM, vaulted.KeyPEM, refcert.KeyPEM}
	dir := t.TempDir()
	for name, body := range map[string]string{
		"shop.yaml":    fixtures.EntityYAML(fixtures.Entity{Name: "shop", SNIs: []string{"shop.example.com"}, Chains: []*fixtures.Leaf{shop}}),
		"api.yaml":     fixtures.EntityYAML(fixtures.Entity{Name: "api", SNIs: []string{"api.example.com"}, Chains: []*fixtures.Leaf{api}}),
		"vaulted.yaml": refKeyYAML("vaulted", vaulted, "$env://INVENTORY_VAULT_KEY"),
		"refcert.yaml": "name: refcert\nsnis: [ref.example.com]\ncert: $env://INVENTORY_REF_CERT\nkey: $env://INVENTORY_REF_KEY\n",
		"ca.roots.pem": string(pinned.CertPEM),
	} {
		if err := os.WriteFile(dir+"/"+name, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cache, err := secrets.New(secrets.Options{})
	if err != nil {
		t.Fatal(err)
	}
	rec := reconciler.New(reconciler.Options{FS: os.DirFS(dir), Gateway: gateway.New(gateway.Options{}), Secrets: cache,
		Hygiene: &schema.Hygiene{}})
	if att, err := rec.ReconcileNow(t.Context()); err != nil || att.Result != reconciler.ResultApplied {
		t.Fatalf("reconcile: %+v, %v", att, err)
	}
	srv := httptest.NewServer(admin.New(admin.Options{Reconciler: rec}).Handler())
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/api/v1/ssls")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	noPrivateKeys(t, "GET /api/v1/ssls", body, keys)
	var raw []struct {
		Name   string
		Chains []map[string]any
	}
	if err := json.Unmarshal(body, &raw); err != nil {
		t.Fatal(err)
	}
	for _, e := range raw {
		if c := e.Chains[0]; c["issuer"] == "" || c["trust"] == nil {
			t.Errorf("GET /api/v1/ssls: %s: issuer %v, trust %v; want both", e.Name, c["issuer"], c["trust"])
		}
	}

	code, out, stderr := runCLI(t, keys, "inventory", "--live", srv.URL, "--format", "json")
	if code != 0 {
		t.Fatalf("inventory --live --format json: exit %d\n%s", code, stderr)
	}
	var doc struct {
		Certificates []struct{ Entity, Issuer, Trust, PublicKeySHA256 string }
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatal(err)
	}
	want := map[string][2]string{
		"shop":    {pinned.Cert.Subject.String(), "private"},
		"api":     {other.Cert.Subject.String(), "untrusted"},
		"vaulted": {pinned.Cert.Subject.String(), "private"},
		"refcert": {pinned.Cert.Subject.String(), "private"},
	}
	for _, c := range doc.Certificates {
		if w := want[c.Entity]; c.Issuer != w[0] || c.Trust != w[1] {
			t.Errorf("inventory --live %s: issuer %q, trust %q; want %q, %q", c.Entity, c.Issuer, c.Trust, w[0], w[1])
		}
		delete(want, c.Entity)
	}
	if len(want) > 0 {
		t.Errorf("inventory --live lacks %v:\n%s", want, out)
	}
	for _, f := range []string{"text", "csv", "markdown"} {
		code, out, stderr := runCLI(t, keys, "inventory", "--live", srv.URL, "--format", f)
		if code != 0 || !strings.Contains(out, "CN=pinned CA") || !strings.Contains(out, "untrusted") || !strings.Contains(out, "private") {
			t.Errorf("inventory --live --format %s: exit %d, want the issuer and trust columns filled\n%s%s", f, code, out, stderr)
		}
	}
}
