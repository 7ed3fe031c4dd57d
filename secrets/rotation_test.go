package secrets_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"certops/fixtures"
	"certops/internal/daemontest"
	"certops/reconciler"
	"certops/secrets"
)

// env is a mutable environment for secrets.Options.Getenv.
type env struct {
	mu   sync.Mutex
	vars map[string]string
}

func (e *env) get(k string) (string, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	v, ok := e.vars[k]
	return v, ok
}

func (e *env) set(k, v string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.vars[k] = v
}

// pairJSON is a leaf as a JSON object {"cert": ..., "key": ...}, the shape
// of a secret that $env://NAME/field reads.
func pairJSON(tb testing.TB, l *fixtures.Leaf) string {
	tb.Helper()
	b, err := json.Marshal(map[string]string{"cert": string(l.ChainPEM), "key": string(l.KeyPEM)})
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}

// stack is a reconciler, fed by secrets.Cache, driving a real gateway on
// 127.0.0.1.
type stack struct {
	cache   *secrets.Cache
	rec     *reconciler.Reconciler
	addr    string
	changes atomic.Int32
	logs    fixtures.SyncBuffer
}

// assertNoSecrets fails if any private key of values (PEM) appears in the
// logs, the status or the entity listing (what the admin API serves),
// with fixtures' leak scanner.
func (s *stack) assertNoSecrets(tb testing.TB, values ...[]byte) {
	tb.Helper()
	status, err := json.Marshal(s.rec.Status())
	if err != nil {
		tb.Fatal(err)
	}
	entities, err := json.Marshal(s.rec.Entities())
	if err != nil {
		tb.Fatal(err)
	}
	scanner := fixtures.PEMScanner(tb, values...)
	for name, text := range map[string]string{"logs": s.logs.String(), "status": string(status), "entities": string(entities)} {
		scanner.Check(tb, name, text)
	}
}

func startStack(tb testing.TB, dir string, opts secrets.Options) *stack {
	tb.Helper()
	s := &stack{}
	// Everything the cache, the reconciler and the gateway log, at debug
	// level, for the scan for secret values.
	log := slog.New(slog.NewJSONHandler(&s.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	opts.Logger = log
	opts.OnChange = func() {
		s.changes.Add(1)
		s.rec.Trigger() // the wiring the daemon does
	}
	cache, err := secrets.New(opts)
	if err != nil {
		tb.Fatal(err)
	}
	s.cache = cache
	d := daemontest.Start(tb, daemontest.Options{FS: os.DirFS(dir), Secrets: cache, Logger: log, Run: true, Also: []func(context.Context){func(ctx context.Context) { cache.Run(ctx) }}})
	s.rec, s.addr = d.Reconciler, d.Addr
	return s
}

// reconcile runs a reconcile now and returns its result.
func (s *stack) reconcile(tb testing.TB) *reconciler.Attempt {
	tb.Helper()
	att, err := s.rec.ReconcileNow(tb.Context())
	if err != nil {
		tb.Fatal(err)
	}
	return att
}

// served returns the serial of the leaf certificate the gateway presents
// for sni, in a new full handshake.
func (s *stack) served(tb testing.TB, sni string, roots *x509.CertPool) *big.Int {
	tb.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	conn, err := tls.DialWithDialer(d, "tcp", s.addr, &tls.Config{ServerName: sni, RootCAs: roots})
	if err != nil {
		tb.Fatalf("handshake for %s: %v", sni, err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].SerialNumber
}

func degraded(st *reconciler.Status) map[string]string {
	m := map[string]string{}
	for _, d := range st.Degraded {
		m[d.Entity] = d.Reason
	}
	return m
}

// TestRotationWithoutCommit: the keys live in Vault and in the
// environment, the repository only names them. Rotating them in the store
// changes what the gateway serves on the next handshake, with no commit; a
// store outage keeps serving the last values and reports the entity
// degraded.
func TestRotationWithoutCommit(t *testing.T) {
	ca := fixtures.NewRootCA(t, "certops rotation test CA")
	roots := fixtures.Pool(ca)
	shop1, shop2 := ca.Server(t, "shop.example.com"), ca.Server(t, "shop.example.com")
	api1, api2 := ca.Server(t, "api.example.com"), ca.Server(t, "api.example.com")

	vault := secrets.NewTestVault(t)
	vault.Put("secret/tls/shop", map[string]any{"cert": string(shop1.ChainPEM), "key": string(shop1.KeyPEM)})
	e := &env{vars: map[string]string{
		"VAULT_ADDR":  vault.URL,
		"VAULT_TOKEN": "root-token",
		"API_TLS":     pairJSON(t, api1),
	}}
	dir := fixtures.WriteFiles(t, map[string]string{
		"shop.yaml": "name: shop\nsnis: [shop.example.com]\n" +
			"cert: $secret://vault/secret/tls/shop/cert\nkey: $secret://vault/secret/tls/shop/key\n",
		"api.yaml": "name: api\nsnis: [api.example.com]\ncert: $env://API_TLS/cert\nkey: $ENV://API_TLS/key\n",
	})
	s := startStack(t, dir, secrets.Options{Refresh: time.Hour, Getenv: e.get, HTTPClient: vault.Client})
	if att := s.reconcile(t); att.Result != reconciler.ResultApplied && att.Result != reconciler.ResultUnchanged {
		t.Fatalf("first reconcile: %s %v", att.Result, att.Err())
	}
	secrets.FastRetries(t, s.cache)
	if got := s.served(t, "shop.example.com", roots); got.Cmp(shop1.Cert.SerialNumber) != 0 {
		t.Fatalf("shop serves serial %x, want %x", got, shop1.Cert.SerialNumber)
	}

	// Rotate both in their stores; nothing changes in the repository.
	vault.Put("secret/tls/shop", map[string]any{"cert": string(shop2.ChainPEM), "key": string(shop2.KeyPEM)})
	e.set("API_TLS", pairJSON(t, api2))
	if err := s.cache.Refresh(t.Context()); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	if s.changes.Load() == 0 {
		t.Fatal("Refresh saw the rotation but did not call OnChange")
	}
	s.reconcile(t) // runs after the reconcile OnChange triggered, or is it
	for sni, want := range map[string]*fixtures.Leaf{"shop.example.com": shop2, "api.example.com": api2} {
		if got := s.served(t, sni, roots); got.Cmp(want.Cert.SerialNumber) != 0 {
			t.Errorf("after rotation %s serves serial %x, want %x", sni, got, want.Cert.SerialNumber)
		}
	}

	// Vault is sealed: the refresh fails, the last values keep serving and
	// the entity using Vault is degraded.
	vault.SetSealed(true)
	before := s.changes.Load()
	if err := s.cache.Refresh(t.Context()); err == nil || !strings.Contains(err.Error(), "Vault is sealed") {
		t.Fatalf("Refresh with Vault sealed = %v, want the sealed error", err)
	}
	if s.changes.Load() == before {
		t.Error("turning stale did not call OnChange")
	}
	s.reconcile(t)
	if got := s.served(t, "shop.example.com", roots); got.Cmp(shop2.Cert.SerialNumber) != 0 {
		t.Errorf("during the outage shop serves serial %x, want %x", got, shop2.Cert.SerialNumber)
	}
	deg := degraded(s.rec.Status())
	if reason, ok := deg["shop"]; !ok || !strings.Contains(reason, "$secret://vault/secret/tls/shop/") {
		t.Errorf("Status().Degraded = %v, want shop degraded naming its reference", deg)
	}
	if _, ok := deg["api"]; ok {
		t.Errorf("Status().Degraded = %v: api's secret did not fail", deg)
	}
	for _, reason := range deg {
		if strings.Contains(reason, "PRIVATE KEY") || strings.Contains(reason, "CERTIFICATE") {
			t.Errorf("degraded reason %q holds a value", reason)
		}
	}

	if logs := s.logs.String(); !strings.Contains(logs, "secret value changed") || !strings.Contains(logs, "Vault is sealed") {
		t.Errorf("the logs scanned below miss the rotation or the outage:\n%s", logs)
	}
	s.assertNoSecrets(t, shop1.KeyPEM, shop2.KeyPEM, api1.KeyPEM, api2.KeyPEM)

	// Unsealed: fresh again, no longer degraded.
	vault.SetSealed(false)
	if err := s.cache.Refresh(t.Context()); err != nil {
		t.Fatalf("Refresh after unsealing: %v", err)
	}
	s.reconcile(t)
	if deg := degraded(s.rec.Status()); len(deg) != 0 {
		t.Errorf("after recovery Status().Degraded = %v, want none", deg)
	}
}

// TestRotationByRefreshInterval: with no explicit refresh, the background
// loop picks the new value up within the interval and the gateway serves
// it.
func TestRotationByRefreshInterval(t *testing.T) {
	ca := fixtures.NewRootCA(t, "certops rotation test CA")
	roots := fixtures.Pool(ca)
	l1, l2 := ca.Server(t, "shop.example.com"), ca.Server(t, "shop.example.com")
	e := &env{vars: map[string]string{"SHOP_TLS": pairJSON(t, l1)}}
	dir := fixtures.WriteFiles(t, map[string]string{
		"shop.yaml": "name: shop\nsnis: [shop.example.com]\ncert: $env://SHOP_TLS/cert\nkey: $env://SHOP_TLS/key\n",
	})
	s := startStack(t, dir, secrets.Options{Refresh: 50 * time.Millisecond, Getenv: e.get})
	s.reconcile(t)
	if got := s.served(t, "shop.example.com", roots); got.Cmp(l1.Cert.SerialNumber) != 0 {
		t.Fatalf("serves serial %x, want %x", got, l1.Cert.SerialNumber)
	}
	e.set("SHOP_TLS", pairJSON(t, l2))
	// Wait (bounded) for the refresh loop; this is not a timing assertion.
	deadline := time.Now().Add(20 * time.Second)
	for s.served(t, "shop.example.com", roots).Cmp(l2.Cert.SerialNumber) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the rotated certificate was not served within 20s of a 50ms refresh interval")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestNewRevisionWithUnresolvableReference: a revision whose reference
// cannot be resolved yet is a retryable failure, not applied at all; the
// running state keeps serving, and once the secret exists it applies.
func TestNewRevisionWithUnresolvableReference(t *testing.T) {
	ca := fixtures.NewRootCA(t, "certops rotation test CA")
	roots := fixtures.Pool(ca)
	shop, api := ca.Server(t, "shop.example.com"), ca.Server(t, "api.example.com")
	e := &env{vars: map[string]string{"SHOP_TLS": pairJSON(t, shop)}}
	dir := fixtures.WriteFiles(t, map[string]string{
		"shop.yaml": "name: shop\nsnis: [shop.example.com]\ncert: $env://SHOP_TLS/cert\nkey: $env://SHOP_TLS/key\n",
	})
	s := startStack(t, dir, secrets.Options{Refresh: time.Hour, Getenv: e.get})
	s.reconcile(t)
	if err := os.WriteFile(filepath.Join(dir, "api.yaml"),
		[]byte("name: api\nsnis: [api.example.com]\ncert: $env://API_TLS/cert\nkey: $env://API_TLS/key\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	att := s.reconcile(t)
	if att.Result != reconciler.ResultFailed || !strings.Contains(att.Err().Error(), "$env://API_TLS/cert") {
		t.Fatalf("reconcile with an unresolvable reference = %s %v, want failed naming $env://API_TLS/cert", att.Result, att.Err())
	}
	if got := s.served(t, "shop.example.com", roots); got.Cmp(shop.Cert.SerialNumber) != 0 {
		t.Errorf("shop serves serial %x, want %x", got, shop.Cert.SerialNumber)
	}
	e.set("API_TLS", pairJSON(t, api))
	if att := s.reconcile(t); att.Result != reconciler.ResultApplied {
		t.Fatalf("reconcile once the secret exists = %s %v, want applied", att.Result, att.Err())
	}
	if got := s.served(t, "api.example.com", roots); got.Cmp(api.Cert.SerialNumber) != 0 {
		t.Errorf("api serves serial %x, want %x", got, api.Cert.SerialNumber)
	}
}
