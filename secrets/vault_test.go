package secrets

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// mapEnv is an environment for Options.Getenv.
func mapEnv(env map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := env[k]; return v, ok }
}

// vaultOf returns the client of c's environment Vault server.
func vaultOf(tb testing.TB, c *Cache) *vaultClient {
	tb.Helper()
	p, err := c.providers.get(tb.Context(), "vault")
	if err != nil {
		tb.Fatal(err)
	}
	vc, err := p.(*vaultProvider).env.get(tb.Context())
	if err != nil {
		tb.Fatal(err)
	}
	return vc
}

// newVaultCache returns a Cache whose Vault client talks to d, shares d's
// clock and retries without waiting long.
func newVaultCache(tb testing.TB, d *vaultDouble, env map[string]string) (*Cache, *vaultClient) {
	tb.Helper()
	if _, ok := env["VAULT_ADDR"]; !ok {
		env["VAULT_ADDR"] = d.srv.URL
	}
	c, err := New(Options{Getenv: mapEnv(env), HTTPClient: d.srv.Client()})
	if err != nil {
		tb.Fatal(err)
	}
	vc := vaultOf(tb, c)
	vc.now = d.clock.Now
	vc.http.RetryWaitMin, vc.http.RetryWaitMax = time.Millisecond, 5*time.Millisecond
	return c, vc
}

func TestVaultKV(t *testing.T) {
	d := newVaultDouble(t)
	d.put("secret/tls/shop", map[string]any{"key": "v2-key", "cert": "v2-cert", "n": 42})
	d.put("secret/tls/api", map[string]any{"key": "v2-api"})
	d.put("kv/tls/shop", map[string]any{"key": "v1-key"})
	c, _ := newVaultCache(t, d, map[string]string{"VAULT_TOKEN": "root-token"})

	tests := []struct {
		ref  string
		want string
	}{
		{"$secret://vault/secret/tls/shop/key", "v2-key"},
		{"$secret://vault/secret/tls/shop/cert", "v2-cert"},
		{"$SECRET://Vault/secret/tls/api/key", "v2-api"},
		{"$secret://vault/secret/tls/shop/n", "42"},
		{"$secret://vault/kv/tls/shop/key", "v1-key"},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			got, err := c.Resolve(t.Context(), tt.ref)
			if err != nil || string(got) != tt.want {
				t.Errorf("Resolve(%q) = %q, %v, want %q", tt.ref, got, err, tt.want)
			}
		})
	}
	// One preflight per mount, then reads at the CLI's API paths, one per
	// secret however many of its fields are referenced (issue 17.6).
	want := []string{
		"GET /v1/auth/token/lookup-self",
		"GET /v1/sys/internal/ui/mounts/secret/tls/shop",
		"GET /v1/secret/data/tls/shop",
		"GET /v1/secret/data/tls/api",
		"GET /v1/sys/internal/ui/mounts/kv/tls/shop",
		"GET /v1/kv/tls/shop",
	}
	if diff := cmp.Diff(want, d.log()); diff != "" {
		t.Errorf("requests (-want +got):\n%s", diff)
	}
}

// TestVaultOneReadPerRound: a refresh round reads each secret once, so a
// certificate and its key come from the same version of the secret.
func TestVaultOneReadPerRound(t *testing.T) {
	d := newVaultDouble(t)
	d.put("secret/tls/shop", map[string]any{"cert": "c1", "key": "k1"})
	c, _ := newVaultCache(t, d, map[string]string{"VAULT_TOKEN": "root-token"})
	for _, f := range []string{"cert", "key"} {
		if _, err := c.Resolve(t.Context(), "$secret://vault/secret/tls/shop/"+f); err != nil {
			t.Fatal(err)
		}
	}
	d.log()
	d.put("secret/tls/shop", map[string]any{"cert": "c2", "key": "k2"})
	if err := c.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"GET /v1/secret/data/tls/shop"}, d.log()); diff != "" {
		t.Errorf("requests of a refresh round (-want +got):\n%s", diff)
	}
	for f, want := range map[string]string{"cert": "c2", "key": "k2"} {
		if got, _ := c.Resolve(t.Context(), "$secret://vault/secret/tls/shop/"+f); string(got) != want {
			t.Errorf("after the round %s = %q, want %q", f, got, want)
		}
	}
}

func TestVaultKVVersionForced(t *testing.T) {
	for _, tt := range []struct {
		version, mount, want string
	}{
		{"2", "2", "GET /v1/secret/data/tls/shop"},
		{"1", "", "GET /v1/secret/tls/shop"},
	} {
		t.Run("v"+tt.version, func(t *testing.T) {
			d := newVaultDouble(t)
			d.mounts = map[string]string{"secret/": tt.mount}
			d.put("secret/tls/shop", map[string]any{"key": "k"})
			c, _ := newVaultCache(t, d, map[string]string{"VAULT_TOKEN": "root-token", "VAULT_KV_VERSION": tt.version})
			if _, err := c.Resolve(t.Context(), "$secret://vault/secret/tls/shop/key"); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff([]string{"GET /v1/auth/token/lookup-self", tt.want}, d.log()); diff != "" {
				t.Errorf("requests (-want +got):\n%s", diff)
			}
		})
	}
}

func TestVaultNamespace(t *testing.T) {
	d := newVaultDouble(t)
	d.namespace = "team-a/"
	d.put("secret/tls/shop", map[string]any{"key": "ns-key"})
	ref := "$secret://vault/secret/tls/shop/key"

	c, _ := newVaultCache(t, d, map[string]string{"VAULT_TOKEN": "root-token", "VAULT_NAMESPACE": "team-a/"})
	if got, err := c.Resolve(t.Context(), ref); err != nil || string(got) != "ns-key" {
		t.Errorf("Resolve(%q) with VAULT_NAMESPACE = %q, %v, want ns-key", ref, got, err)
	}
	c, _ = newVaultCache(t, d, map[string]string{"VAULT_TOKEN": "root-token"})
	if _, err := c.Resolve(t.Context(), ref); err == nil {
		t.Errorf("Resolve(%q) without X-Vault-Namespace succeeded; the double requires it", ref)
	}
}

func TestVaultErrors(t *testing.T) {
	ref := "$secret://vault/secret/tls/shop/key"
	tests := []struct {
		name     string
		setup    func(d *vaultDouble)
		token    string
		want     string // in the error
		notFound bool
		requests int // to the KV read path
	}{
		{"permission denied is final", func(d *vaultDouble) {}, "wrong-token", "403: permission denied", false, 0},
		{"missing secret", func(d *vaultDouble) { delete(d.secrets, "secret/tls/shop") }, "root-token", "404", true, 1},
		{"missing field", func(d *vaultDouble) { d.secrets["secret/tls/shop"] = map[string]any{"cert": "c"} }, "root-token", "field key", true, 1},
		{"sealed after retries", func(d *vaultDouble) { d.sealed = true }, "root-token", "503: Vault is sealed", false, 0},
		{"rate limited after retries", func(d *vaultDouble) { d.fail = []int{429, 429, 429, 429} }, "root-token", "429", false, 0},
		{"bad request is final", func(d *vaultDouble) { d.fail = []int{400} }, "root-token", "400", false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newVaultDouble(t)
			d.put("secret/tls/shop", map[string]any{"key": "the-secret-key"})
			tt.setup(d)
			c, _ := newVaultCache(t, d, map[string]string{"VAULT_TOKEN": tt.token})
			_, err := c.Resolve(t.Context(), ref)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Resolve(%q) = %v, want an error containing %q", ref, err, tt.want)
			}
			if !strings.Contains(err.Error(), ref) {
				t.Errorf("error %q does not name the reference", err)
			}
			if got := errors.Is(err, ErrNotFound); got != tt.notFound {
				t.Errorf("errors.Is(%v, ErrNotFound) = %v, want %v", err, got, tt.notFound)
			}
			var re *ReferenceError
			if !errors.As(err, &re) || re.Ref != ref {
				t.Errorf("error %v is not a *ReferenceError for %s", err, ref)
			}
			if got := d.count("GET /v1/secret/data/"); got != tt.requests {
				t.Errorf("KV reads = %d, want %d", got, tt.requests)
			}
		})
	}
}

func TestVaultRetries(t *testing.T) {
	tests := []struct {
		name string
		fail []int
		want int // attempts at the first request, the token lookup
	}{
		{"503 then ok", []int{503}, 2},
		{"429 and 502 then ok", []int{429, 502}, 3},
		{"500 500 then ok", []int{500, 500}, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := newVaultDouble(t)
			d.put("secret/tls/shop", map[string]any{"key": "k"})
			d.failNext(tt.fail...)
			c, _ := newVaultCache(t, d, map[string]string{"VAULT_TOKEN": "root-token"})
			got, err := c.Resolve(t.Context(), "$secret://vault/secret/tls/shop/key")
			if err != nil || string(got) != "k" {
				t.Fatalf("Resolve = %q, %v, want k", got, err)
			}
			if n := d.count("GET /v1/auth/token/lookup-self"); n != tt.want {
				t.Errorf("lookup-self attempts = %d, want %d", n, tt.want)
			}
		})
	}
	t.Run("network error", func(t *testing.T) {
		// A server that accepts connections and hangs up: every attempt
		// fails at the network level.
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		var accepts atomic.Int32
		go func() {
			for {
				conn, err := ln.Accept()
				if err != nil {
					return
				}
				accepts.Add(1)
				conn.Close()
			}
		}()
		d := newVaultDouble(t)
		c, _ := newVaultCache(t, d, map[string]string{"VAULT_TOKEN": "root-token", "VAULT_ADDR": "http://" + ln.Addr().String()})
		_, err = c.Resolve(t.Context(), "$secret://vault/secret/tls/shop/key")
		if err == nil {
			t.Fatal("Resolve against a server that hangs up succeeded")
		}
		if n := accepts.Load(); n < 1+vaultRetryMax {
			t.Errorf("connections = %d, want at least %d (first try and retries)", n, 1+vaultRetryMax)
		}
	})
}

func TestVaultAppRole(t *testing.T) {
	d := newVaultDouble(t)
	d.roleID, d.secretID = "role-1", "secret-1"
	d.lease = 600
	d.put("secret/tls/shop", map[string]any{"key": "k"})
	c, _ := newVaultCache(t, d, map[string]string{"VAULT_ROLE_ID": "role-1", "VAULT_SECRET_ID": "secret-1"})
	ref := "$secret://vault/secret/tls/shop/key"
	resolve := func() {
		t.Helper()
		if err := c.Refresh(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.Resolve(t.Context(), ref); err != nil {
		t.Fatal(err)
	}
	if n := d.count("POST /v1/auth/approle/login"); n != 1 {
		t.Fatalf("logins = %d, want 1", n)
	}
	// Within two thirds of the lease: the token is reused.
	d.fake.Advance(300 * time.Second)
	resolve()
	// Past two thirds: renewed, not replaced.
	d.fake.Advance(150 * time.Second)
	resolve()
	if n := d.count("POST /v1/auth/token/renew-self"); n != 1 {
		t.Errorf("renewals = %d, want 1", n)
	}
	if n := d.count("POST /v1/auth/approle/login"); n != 1 {
		t.Errorf("logins after renewal = %d, want 1", n)
	}
	// The token expires while nobody uses it, and is no longer renewable:
	// log in again.
	d.mu.Lock()
	d.renewable = false
	d.mu.Unlock()
	d.fake.Advance(2 * time.Hour)
	resolve()
	if n := d.count("POST /v1/auth/approle/login"); n != 2 {
		t.Errorf("logins after expiry = %d, want 2", n)
	}
	// Revoked behind our back: the 403 leads to one new login.
	d.revokeAll()
	resolve()
	if n := d.count("POST /v1/auth/approle/login"); n != 3 {
		t.Errorf("logins after revocation = %d, want 3", n)
	}
	// Wrong credentials: the login's error is reported.
	d.mu.Lock()
	d.secretID = "rotated"
	d.mu.Unlock()
	d.revokeAll()
	err := c.Refresh(t.Context())
	if err == nil || !strings.Contains(err.Error(), "approle login") || !strings.Contains(err.Error(), "invalid role or secret ID") {
		t.Errorf("Refresh with a wrong secret id = %v, want the approle login error", err)
	}
}

// TestVaultStaticTokenRenewal: a renewable VAULT_TOKEN is looked up once
// and renewed before its TTL runs out.
func TestVaultStaticTokenRenewal(t *testing.T) {
	d := newVaultDouble(t)
	d.put("secret/tls/shop", map[string]any{"key": "k"})
	d.tokens["hvs.static"] = d.clock.Now().Add(time.Hour)
	c, _ := newVaultCache(t, d, map[string]string{"VAULT_TOKEN": "hvs.static"})
	if _, err := c.Resolve(t.Context(), "$secret://vault/secret/tls/shop/key"); err != nil {
		t.Fatal(err)
	}
	for range 3 { // three hours: the token lives on renewals alone
		d.fake.Advance(50 * time.Minute)
		if err := c.Refresh(t.Context()); err != nil {
			t.Fatalf("Refresh at %v: %v", d.clock.Now(), err)
		}
	}
	if n := d.count("POST /v1/auth/token/renew-self"); n != 3 {
		t.Errorf("renewals = %d, want 3", n)
	}
	if n := d.count("GET /v1/auth/token/lookup-self"); n != 1 {
		t.Errorf("lookups = %d, want 1", n)
	}
}

func TestVaultKubernetes(t *testing.T) {
	d := newVaultDouble(t)
	d.k8sRole, d.k8sJWT = "certops", "eyJhbGciOiJSUzI1NiJ9.sa-token.sig"
	d.lease = 60
	d.renewable = false
	d.put("secret/tls/shop", map[string]any{"key": "k8s-key"})
	jwt := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(jwt, []byte(d.k8sJWT+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _ := newVaultCache(t, d, map[string]string{"VAULT_K8S_ROLE": "certops", "VAULT_K8S_TOKEN_PATH": jwt})
	ref := "$secret://vault/secret/tls/shop/key"
	if got, err := c.Resolve(t.Context(), ref); err != nil || string(got) != "k8s-key" {
		t.Fatalf("Resolve(%q) = %q, %v", ref, got, err)
	}
	// A non-renewable token is replaced before it expires.
	d.fake.Advance(45 * time.Second)
	if err := c.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if n := d.count("POST /v1/auth/kubernetes/login"); n != 2 {
		t.Errorf("logins = %d, want 2", n)
	}
	if n := d.count("POST /v1/auth/token/renew-self"); n != 0 {
		t.Errorf("renewals of a non-renewable token = %d, want 0", n)
	}
}

func TestVaultTokenFile(t *testing.T) {
	d := newVaultDouble(t)
	d.put("secret/tls/shop", map[string]any{"key": "k"})
	d.tokens["agent-token-1"] = time.Time{}
	f := filepath.Join(t.TempDir(), "sink")
	if err := os.WriteFile(f, []byte("agent-token-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, _ := newVaultCache(t, d, map[string]string{"VAULT_TOKEN_FILE": f})
	if _, err := c.Resolve(t.Context(), "$secret://vault/secret/tls/shop/key"); err != nil {
		t.Fatal(err)
	}
	// The agent rotates the token and the old one is revoked: the file is
	// read again.
	d.tokens = map[string]time.Time{"agent-token-2": {}}
	if err := os.WriteFile(f, []byte("agent-token-2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.Refresh(t.Context()); err != nil {
		t.Errorf("Refresh after the token file changed: %v", err)
	}
}

func TestVaultTLS(t *testing.T) {
	d := newVaultDouble(t)
	d.put("secret/tls/shop", map[string]any{"key": "tls-key"})
	tlsSrv := httptest.NewUnstartedServer(http.HandlerFunc(d.serve))
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are the point
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	cert := tlsSrv.Certificate()
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	ref := "$secret://vault/secret/tls/shop/key"
	tests := []struct {
		name string
		env  map[string]string
		ok   bool
	}{
		{"VAULT_CACERT", map[string]string{"VAULT_CACERT": caFile}, true},
		{"VAULT_SKIP_VERIFY", map[string]string{"VAULT_SKIP_VERIFY": "true"}, true},
		{"no CA", map[string]string{}, false},
		{"VAULT_SKIP_VERIFY=false", map[string]string{"VAULT_SKIP_VERIFY": "0"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.env["VAULT_ADDR"] = tlsSrv.URL
			tt.env["VAULT_TOKEN"] = "root-token"
			c, err := New(Options{Getenv: mapEnv(tt.env)}) // the client is built from the environment
			if err != nil {
				t.Fatal(err)
			}
			got, err := c.Resolve(t.Context(), ref)
			if tt.ok && (err != nil || string(got) != "tls-key") {
				t.Errorf("Resolve(%q) = %q, %v, want tls-key", ref, got, err)
			}
			var uerr x509.UnknownAuthorityError
			if !tt.ok && !errors.As(err, &uerr) {
				t.Errorf("Resolve(%q) = %v, want an unknown-authority error", ref, err)
			}
		})
	}
}

func TestVaultConfigErrors(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"no credentials", map[string]string{}, "no Vault credentials"},
		{"bad VAULT_KV_VERSION", map[string]string{"VAULT_TOKEN": "t", "VAULT_KV_VERSION": "3"}, "VAULT_KV_VERSION"},
		{"bad VAULT_SKIP_VERIFY", map[string]string{"VAULT_TOKEN": "t", "VAULT_SKIP_VERIFY": "maybe"}, "VAULT_SKIP_VERIFY"},
		{"bad VAULT_ADDR", map[string]string{"VAULT_TOKEN": "t", "VAULT_ADDR": "vault:8200"}, "VAULT_ADDR"},
		{"missing VAULT_CACERT", map[string]string{"VAULT_TOKEN": "t", "VAULT_CACERT": "/nonexistent/ca.pem"}, "VAULT_CACERT"},
		{"missing Kubernetes token", map[string]string{"VAULT_K8S_ROLE": "r", "VAULT_K8S_TOKEN_PATH": "/nonexistent/token"}, "service-account token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.env["HOME"] = t.TempDir() // no ~/.vault-token
			if _, ok := tt.env["VAULT_ADDR"]; !ok {
				tt.env["VAULT_ADDR"] = "http://127.0.0.1:1"
			}
			c, err := New(Options{Getenv: mapEnv(tt.env)})
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Resolve(t.Context(), "$secret://vault/secret/tls/shop/key")
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Resolve = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestKVV2DataPath(t *testing.T) {
	tests := []struct{ path, mount, want string }{
		{"secret/tls/shop", "secret/", "secret/data/tls/shop"},
		{"team/kv/tls", "team/kv/", "team/kv/data/tls"},
		{"kv/tls", "ns1/kv/", "kv/data/tls"}, // the mount carries the namespace
	}
	for _, tt := range tests {
		if got := kvV2DataPath(tt.path, tt.mount); got != tt.want {
			t.Errorf("kvV2DataPath(%q, %q) = %q, want %q", tt.path, tt.mount, got, tt.want)
		}
	}
}
