package secrets_test

import (
	"strings"
	"testing"
	"time"

	"certops/fixtures"
	"certops/reconciler"
	"certops/secrets"
)

// TestOneBadRotationBlocksNothingElse is issue 17.4 through the
// reconciler: while one entity's rotated cert and key mismatch, another
// entity's correct rotation is applied; the mismatched one keeps serving
// its last good pair and is reported degraded until it is fixed.
func TestOneBadRotationBlocksNothingElse(t *testing.T) {
	ca := fixtures.NewRootCA(t, "certops partial test CA")
	roots := fixtures.Pool(ca)
	shop1, shop2 := ca.Server(t, "shop.example.com"), ca.Server(t, "shop.example.com")
	api1, api2 := ca.Server(t, "api.example.com"), ca.Server(t, "api.example.com")
	e := &env{vars: map[string]string{"SHOP_TLS": pairJSON(t, shop1), "API_TLS": pairJSON(t, api1)}}
	dir := fixtures.WriteFiles(t, map[string]string{
		"shop.yaml": "name: shop\nsnis: [shop.example.com]\ncert: $env://SHOP_TLS/cert\nkey: $env://SHOP_TLS/key\n",
		"api.yaml":  "name: api\nsnis: [api.example.com]\ncert: $env://API_TLS/cert\nkey: $env://API_TLS/key\n",
	})
	s := startStack(t, dir, secrets.Options{Refresh: time.Hour, Getenv: e.get})
	s.reconcile(t)
	// api's certificate rotates before its key; shop rotates correctly.
	e.set("API_TLS", `{"cert":`+jsonString(api2.ChainPEM)+`,"key":`+jsonString(api1.KeyPEM)+`}`)
	e.set("SHOP_TLS", pairJSON(t, shop2))
	if err := s.cache.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	s.reconcile(t)
	if got := s.served(t, "shop.example.com", roots); got.Cmp(shop2.Cert.SerialNumber) != 0 {
		t.Errorf("shop serves %x, want its rotated %x", got, shop2.Cert.SerialNumber)
	}
	if got := s.served(t, "api.example.com", roots); got.Cmp(api1.Cert.SerialNumber) != 0 {
		t.Errorf("api serves %x, want its last good %x", got, api1.Cert.SerialNumber)
	}
	if r := degraded(s.rec.Status())["api"]; !strings.Contains(r, "last good") || !strings.Contains(r, "does not match") {
		t.Errorf("api degraded reason = %q, want the mismatch and the last good pair kept", r)
	}
	e.set("API_TLS", pairJSON(t, api2))
	if err := s.cache.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	s.reconcile(t)
	if got := s.served(t, "api.example.com", roots); got.Cmp(api2.Cert.SerialNumber) != 0 {
		t.Errorf("api serves %x once fixed, want %x", got, api2.Cert.SerialNumber)
	}
	if d := degraded(s.rec.Status()); len(d) != 0 {
		t.Errorf("degraded = %v once fixed, want none", d)
	}
	s.assertNoSecrets(t, shop1.KeyPEM, shop2.KeyPEM, api1.KeyPEM, api2.KeyPEM)
}

// TestColdStartServesWhatResolves is issue 17.5 through the reconciler:
// with nothing served yet, an unresolvable reference of one entity does
// not hold back the others; the daemon is ready once they are applied,
// reports the missing one degraded, and serves it once it resolves.
func TestColdStartServesWhatResolves(t *testing.T) {
	ca := fixtures.NewRootCA(t, "certops cold start CA")
	roots := fixtures.Pool(ca)
	shop, api := ca.Server(t, "shop.example.com"), ca.Server(t, "api.example.com")
	e := &env{vars: map[string]string{"SHOP_TLS": pairJSON(t, shop)}}
	dir := fixtures.WriteFiles(t, map[string]string{
		"shop.yaml": "name: shop\nsnis: [shop.example.com]\ncert: $env://SHOP_TLS/cert\nkey: $env://SHOP_TLS/key\n",
		"api.yaml":  "name: api\nsnis: [api.example.com]\ncert: $env://API_TLS/cert\nkey: $env://API_TLS/key\n",
	})
	s := startStack(t, dir, secrets.Options{Refresh: time.Hour, Getenv: e.get})
	att := s.reconcile(t)
	if att.Result != reconciler.ResultApplied && att.Result != reconciler.ResultUnchanged {
		t.Fatalf("cold start with one unresolvable entity = %s %v, want the others applied", att.Result, att.Err())
	}
	if !s.rec.Ready() {
		t.Error("not ready after the resolvable entities were applied")
	}
	if got := s.served(t, "shop.example.com", roots); got.Cmp(shop.Cert.SerialNumber) != 0 {
		t.Errorf("shop serves %x, want %x", got, shop.Cert.SerialNumber)
	}
	if r := degraded(s.rec.Status())["api"]; !strings.Contains(r, "not served") || strings.Count(r, "$env://API_TLS/cert") != 1 {
		t.Errorf("api degraded reason = %q, want not served, naming the reference once", r)
	}
	e.set("API_TLS", pairJSON(t, api))
	if att := s.reconcile(t); att.Result != reconciler.ResultApplied {
		t.Fatalf("reconcile once api resolves = %s %v, want applied", att.Result, att.Err())
	}
	if got := s.served(t, "api.example.com", roots); got.Cmp(api.Cert.SerialNumber) != 0 {
		t.Errorf("api serves %x, want %x", got, api.Cert.SerialNumber)
	}
	if d := degraded(s.rec.Status()); len(d) != 0 {
		t.Errorf("degraded = %v once everything resolves, want none", d)
	}
}

func jsonString(b []byte) string {
	var sb strings.Builder
	sb.WriteByte('"')
	for _, r := range string(b) {
		switch r {
		case '\n':
			sb.WriteString(`\n`)
		case '"', '\\':
			sb.WriteByte('\\')
			sb.WriteRune(r)
		default:
			sb.WriteRune(r)
		}
	}
	sb.WriteByte('"')
	return sb.String()
}
