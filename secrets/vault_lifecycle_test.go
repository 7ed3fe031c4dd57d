package secrets

import (
	"context"
	"crypto/tls"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// runCache runs c until the test ends.
func runCache(t *testing.T, c *Cache) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.Run(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// TestTokenRenewedWithoutFetches is issue 17.2: a token is renewed on its
// own schedule, at two thirds of its TTL, however rarely secrets are
// fetched, for VAULT_TOKEN and for a login method alike.
func TestTokenRenewedWithoutFetches(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
	}{
		{"VAULT_TOKEN", map[string]string{"VAULT_TOKEN": "hvs.static"}},
		{"AppRole", map[string]string{"VAULT_ROLE_ID": "role-1", "VAULT_SECRET_ID": "secret-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				d := newMemVaultDouble(t)
				d.lease = 30
				d.roleID, d.secretID = "role-1", "secret-1"
				d.tokens["hvs.static"] = time.Now().Add(30 * time.Second)
				d.put("secret/tls/shop", map[string]any{"key": "k"})
				c := memVaultCache(t, d, tt.env, func(o *Options) { o.Refresh = time.Hour })
				ref := "$secret://vault/secret/tls/shop/key"
				if _, err := c.Resolve(t.Context(), ref); err != nil {
					t.Fatal(err)
				}
				runCache(t, c)
				time.Sleep(10 * time.Minute) // no refresh round in this time
				synctest.Wait()
				if n := d.count("POST /v1/auth/token/renew-self"); n < 25 {
					t.Errorf("renewals in 10 minutes of a 30s token = %d, want about 30", n)
				}
				if n := d.count("GET /v1/secret/"); n != 1 {
					t.Errorf("KV reads = %d, want 1 (renewal needs no fetch)", n)
				}
				if n := d.count("POST /v1/auth/approle/login"); n > 1 {
					t.Errorf("logins = %d, want at most 1", n)
				}
				if err := c.Refresh(t.Context()); err != nil {
					t.Errorf("Refresh after 10 minutes: %v", err)
				}
			})
		})
	}
}

// TestTokenExpiryWarned: a VAULT_TOKEN that cannot be renewed is a Warn
// with the time it expires.
func TestTokenExpiryWarned(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := newMemVaultDouble(t)
		d.renewable = false
		d.tokens["hvs.static"] = time.Now().Add(time.Hour)
		d.put("secret/tls/shop", map[string]any{"key": "k"})
		var logs syncLog
		c := memVaultCache(t, d, map[string]string{"VAULT_TOKEN": "hvs.static"}, func(o *Options) {
			o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		})
		if _, err := c.Resolve(t.Context(), "$secret://vault/secret/tls/shop/key"); err != nil {
			t.Fatal(err)
		}
		want := "expires=" + time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
		if !strings.Contains(logs.String(), "level=WARN msg=\"VAULT_TOKEN cannot be renewed") || !strings.Contains(logs.String(), want) {
			t.Errorf("logs = %s, want a Warn that VAULT_TOKEN cannot be renewed with %s", logs.String(), want)
		}
	})
}

// TestPolicyRefusalDoesNotLogIn is issue 17.3: a path that the policy
// refuses (403 while the token is valid) provokes no login, and tokens
// that certops replaces are revoked.
func TestPolicyRefusalDoesNotLogIn(t *testing.T) {
	tests := []struct {
		name      string
		lease     int64
		renewable bool
		maxLogins int // in an hour
	}{
		{"renewable 1h token", 3600, true, 1},
		// A 60s lease that cannot be renewed needs a login every 40s: 90 an
		// hour, each replacing (and revoking) the previous token.
		{"non-renewable 60s token", 60, false, 91},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				d := newMemVaultDouble(t)
				d.roleID, d.secretID = "role-1", "secret-1"
				d.lease, d.renewable = tt.lease, tt.renewable
				d.put("secret/tls/good", map[string]any{"key": "k"})
				d.put("secret/tls/bad", map[string]any{"key": "k"})
				c := memVaultCache(t, d, map[string]string{"VAULT_ROLE_ID": "role-1", "VAULT_SECRET_ID": "secret-1"}, func(o *Options) {
					o.Refresh = time.Minute
				})
				bad := "$secret://vault/secret/tls/bad/key"
				for _, ref := range []string{"$secret://vault/secret/tls/good/key", bad} {
					if _, err := c.Resolve(t.Context(), ref); err != nil {
						t.Fatal(err)
					}
				}
				d.mu.Lock()
				d.deny["secret/data/tls/bad"] = true // the policy lost one path
				d.mu.Unlock()
				runCache(t, c)
				time.Sleep(time.Hour)
				synctest.Wait()
				logins := d.count("POST /v1/auth/approle/login")
				t.Logf("%s, one hour under a policy 403: %d logins, %d lookups, %d revocations, %d KV reads, %d live tokens",
					tt.name, logins, d.count("GET /v1/auth/token/lookup-self"), d.count("POST /v1/auth/token/revoke-self"),
					d.count("GET /v1/secret/"), d.liveTokens())
				if logins > tt.maxLogins {
					t.Errorf("logins in an hour = %d, want at most %d (the lease's own)", logins, tt.maxLogins)
				}
				if n := d.count("POST /v1/auth/token/revoke-self"); n < logins-2 {
					t.Errorf("revocations = %d for %d logins, want every replaced token revoked", n, logins)
				}
				if n := d.liveTokens(); n > 2 {
					t.Errorf("live tokens = %d, want at most 2 (root and the current one)", n)
				}
				if err := c.Stale(bad); err == nil || !strings.Contains(err.Error(), "403: permission denied") || strings.Contains(err.Error(), "\n") {
					t.Errorf("Stale(%q) = %q, want the 403 on one line", bad, err)
				}
			})
		})
	}
}

// TestInvalidTokenLoginsBackOff: a token the server no longer accepts is
// replaced at most once per backoff step, however often reads fail.
func TestInvalidTokenLoginsBackOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		d := newMemVaultDouble(t)
		d.roleID, d.secretID = "role-1", "secret-1"
		d.put("secret/tls/shop", map[string]any{"key": "k"})
		c := memVaultCache(t, d, map[string]string{"VAULT_ROLE_ID": "role-1", "VAULT_SECRET_ID": "secret-1"}, func(o *Options) {
			o.Refresh = 10 * time.Second
		})
		for _, f := range []string{"a", "b", "c"} {
			d.put("secret/tls/"+f, map[string]any{"key": "k"})
			if _, err := c.Resolve(t.Context(), "$secret://vault/secret/tls/"+f+"/key"); err != nil {
				t.Fatal(err)
			}
		}
		// Every token is revoked and the secret id rotated: logins fail.
		d.mu.Lock()
		d.secretID = "rotated"
		d.mu.Unlock()
		d.revokeAll()
		d.log()
		runCache(t, c)
		time.Sleep(10 * time.Minute)
		synctest.Wait()
		// 5s doubling to 5m: at most 7 in 10 minutes.
		if n := d.count("POST /v1/auth/approle/login"); n > 8 || n < 2 {
			t.Errorf("logins in 10 minutes with an invalid token = %d, want 2 to 8 (one per backoff step)", n)
		}
	})
}

// TestVaultMessages is issue 17.7: the reason follows the latest failure,
// Vault's multi-line errors are one line, an http:// address against TLS
// says so, and a login failure is not dressed as KV detection.
func TestVaultMessages(t *testing.T) {
	t.Run("reason follows the latest failure", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			d := newMemVaultDouble(t)
			d.put("secret/tls/shop", map[string]any{"key": "k"})
			var changes atomic.Int32
			c := memVaultCache(t, d, map[string]string{"VAULT_TOKEN": "root-token"}, func(o *Options) {
				o.OnChange = func() { changes.Add(1) }
			})
			ref := "$secret://vault/secret/tls/shop/key"
			if _, err := c.Resolve(t.Context(), ref); err != nil {
				t.Fatal(err)
			}
			d.mu.Lock()
			d.deny["secret/data/tls/shop"] = true
			d.mu.Unlock()
			c.Refresh(t.Context())
			first := c.Stale(ref)
			d.setSealed(true)
			c.Refresh(t.Context())
			second := c.Stale(ref)
			if first == nil || second == nil || !strings.Contains(first.Error(), "403") || !strings.Contains(second.Error(), "sealed") {
				t.Errorf("Stale after a 403 then a seal = %v, then %v; want the 403, then the seal", first, second)
			}
			if changes.Load() != 2 {
				t.Errorf("OnChange calls = %d, want 2 (the reason changed)", changes.Load())
			}
		})
	})
	t.Run("http against TLS", func(t *testing.T) {
		d := newVaultDouble(t)
		srv := httptest.NewUnstartedServer(http.HandlerFunc(d.serve))
		srv.Config.ErrorLog = log.New(io.Discard, "", 0)
		srv.StartTLS()
		t.Cleanup(srv.Close)
		addr := "http://" + strings.TrimPrefix(srv.URL, "https://")
		c, err := New(Options{Getenv: mapEnv(map[string]string{"VAULT_ADDR": addr, "VAULT_TOKEN": "root-token"})})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Resolve(t.Context(), "$secret://vault/secret/tls/shop/key")
		if err == nil || !strings.Contains(err.Error(), "speaks TLS: use an https:// address") {
			t.Errorf("Resolve over http:// against TLS = %v, want it to say the server speaks TLS", err)
		}
	})
	t.Run("login failure", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			d := newMemVaultDouble(t)
			d.roleID = "role-1"
			c := memVaultCache(t, d, map[string]string{"VAULT_ROLE_ID": "role-1", "VAULT_SECRET_ID": "wrong"}, nil)
			ref := "$secret://vault/secret/tls/shop/key"
			_, err := c.Resolve(t.Context(), ref)
			if err == nil || strings.Contains(err.Error(), "detect") || !strings.Contains(err.Error(), "approle login") || strings.Count(err.Error(), ref) != 1 {
				t.Errorf("Resolve with a wrong secret id = %v, want the login error, the reference named once", err)
			}
		})
	})
}

// TestVaultSmallThings is issue 17.8.
func TestVaultSmallThings(t *testing.T) {
	t.Run("User-Agent", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			d := newMemVaultDouble(t)
			d.put("secret/tls/shop", map[string]any{"key": "k"})
			c := memVaultCache(t, d, map[string]string{"VAULT_TOKEN": "root-token"}, func(o *Options) { o.UserAgent = "certops/v1.2.3" })
			if _, err := c.Resolve(t.Context(), "$secret://vault/secret/tls/shop/key"); err != nil {
				t.Fatal(err)
			}
			d.mu.Lock()
			defer d.mu.Unlock()
			for _, ua := range d.agents {
				if ua != "certops/v1.2.3" {
					t.Errorf("User-Agent = %q, want certops/v1.2.3", ua)
				}
			}
		})
	})
	t.Run("VAULT_SKIP_VERIFY warned once", func(t *testing.T) {
		d := newVaultDouble(t)
		d.put("secret/tls/shop", map[string]any{"key": "k", "cert": "c"})
		srv := httptest.NewUnstartedServer(http.HandlerFunc(d.serve))
		srv.TLS = &tls.Config{MinVersion: tls.VersionTLS12}
		srv.StartTLS()
		t.Cleanup(srv.Close)
		var logs syncLog
		c, err := New(Options{Logger: slog.New(slog.NewTextHandler(&logs, nil)), Getenv: mapEnv(map[string]string{
			"VAULT_ADDR": srv.URL, "VAULT_TOKEN": "root-token", "VAULT_SKIP_VERIFY": "true"})})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []string{"key", "cert"} {
			if _, err := c.Resolve(t.Context(), "$secret://vault/secret/tls/shop/"+f); err != nil {
				t.Fatal(err)
			}
		}
		if err := c.Refresh(t.Context()); err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(logs.String(), "VAULT_SKIP_VERIFY is on"); n != 1 {
			t.Errorf("warnings about VAULT_SKIP_VERIFY = %d, want 1:\n%s", n, logs.String())
		}
	})
	t.Run("VAULT_KV_VERSION per mount", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			d := newMemVaultDouble(t)
			d.put("secret/tls/shop", map[string]any{"key": "v2"})
			d.put("kv/tls/shop", map[string]any{"key": "v1"})
			c := memVaultCache(t, d, map[string]string{"VAULT_TOKEN": "root-token", "VAULT_KV_VERSION": "kv=1"}, nil)
			for ref, want := range map[string]string{"$secret://vault/secret/tls/shop/key": "v2", "$secret://vault/kv/tls/shop/key": "v1"} {
				if got, err := c.Resolve(t.Context(), ref); err != nil || string(got) != want {
					t.Errorf("Resolve(%q) = %q, %v, want %q", ref, got, err, want)
				}
			}
			if n := d.count("GET /v1/sys/internal/ui/mounts/kv/"); n != 0 {
				t.Errorf("KV detections of the forced mount = %d, want 0", n)
			}
			if n := d.count("GET /v1/sys/internal/ui/mounts/secret/"); n != 1 {
				t.Errorf("KV detections of the other mount = %d, want 1", n)
			}
		})
		for _, bad := range []string{"3", "kv=3", "=2", "kv"} {
			if _, err := parseKVOverrides(bad); err == nil {
				t.Errorf("parseKVOverrides(%q) succeeded, want an error", bad)
			}
		}
	})
	t.Run("token file read every minute", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			d := newMemVaultDouble(t)
			d.put("secret/tls/shop", map[string]any{"key": "k"})
			d.tokens["agent-1"], d.tokens["agent-2"] = time.Time{}, time.Time{}
			f := filepath.Join(t.TempDir(), "sink")
			write := func(tok string) {
				if err := os.WriteFile(f, []byte(tok+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			write("agent-1")
			c := memVaultCache(t, d, map[string]string{"VAULT_TOKEN_FILE": f}, func(o *Options) { o.Refresh = time.Hour })
			if _, err := c.Resolve(t.Context(), "$secret://vault/secret/tls/shop/key"); err != nil {
				t.Fatal(err)
			}
			vc := vaultOf(t, c)
			runCache(t, c)
			write("agent-2")
			current := func() string { vc.tok.mu.Lock(); defer vc.tok.mu.Unlock(); return vc.tok.token }
			time.Sleep(59 * time.Second)
			synctest.Wait()
			if got := current(); got != "agent-1" {
				t.Errorf("token after 59s = %q, want agent-1 (the file is read every minute)", got)
			}
			time.Sleep(2 * time.Second)
			synctest.Wait()
			if got := current(); got != "agent-2" {
				t.Errorf("token after 61s = %q, want agent-2", got)
			}
		})
	})
}
