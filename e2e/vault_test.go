package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// vaultServer is a small Vault for the binary's tests. It follows Vault's
// documented HTTP API (https://developer.hashicorp.com/vault/api-docs): KV
// v1 at kv/ and KV v2 at secret/ (GET /v1/<mount>/<path>,
// /v1/<mount>/data/<path>), sys/internal/ui/mounts for the CLI's version
// detection, auth/token/lookup-self, X-Vault-Token, and {"errors": [...]}
// bodies. hang makes every request wait until the client gives up.
type vaultServer struct {
	url string
	ln  net.Listener
	srv *http.Server

	mu      sync.Mutex
	secrets map[string]map[string]string // "kv/..." or "secret/..." (without data/)
	token   string
	agents  map[string]bool
	hang    chan struct{}
}

func newVaultServer(tb testing.TB, token string) *vaultServer {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	v := &vaultServer{url: "http://" + ln.Addr().String(), ln: ln, secrets: map[string]map[string]string{}, token: token, agents: map[string]bool{}}
	v.srv = &http.Server{Handler: http.HandlerFunc(v.serve), ReadHeaderTimeout: 10 * time.Second}
	go v.srv.Serve(ln)
	tb.Cleanup(func() { v.setHang(false); v.srv.Close() })
	return v
}

func (v *vaultServer) put(path string, fields map[string]string) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.secrets[path] = fields
}

func (v *vaultServer) setHang(b bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	switch {
	case b && v.hang == nil:
		v.hang = make(chan struct{})
	case !b && v.hang != nil:
		close(v.hang)
		v.hang = nil
	}
}

func (v *vaultServer) reply(w http.ResponseWriter, status int, body any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(body)
}

func (v *vaultServer) serve(w http.ResponseWriter, r *http.Request) {
	v.mu.Lock()
	v.agents[r.Header.Get("User-Agent")] = true
	hang, token := v.hang, v.token
	v.mu.Unlock()
	if hang != nil {
		select {
		case <-hang:
		case <-r.Context().Done():
			return
		}
	}
	if r.Header.Get("X-Vault-Token") != token {
		v.reply(w, http.StatusForbidden, map[string]any{"errors": []string{"permission denied"}})
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/v1/")
	switch {
	case path == "auth/token/lookup-self":
		v.reply(w, http.StatusOK, map[string]any{"data": map[string]any{"ttl": 0, "renewable": false}})
		return
	case strings.HasPrefix(path, "sys/internal/ui/mounts/"):
		p := strings.TrimPrefix(path, "sys/internal/ui/mounts/")
		switch {
		case strings.HasPrefix(p, "secret/"):
			v.reply(w, http.StatusOK, map[string]any{"data": map[string]any{"path": "secret/", "type": "kv", "options": map[string]string{"version": "2"}}})
		case strings.HasPrefix(p, "kv/"):
			v.reply(w, http.StatusOK, map[string]any{"data": map[string]any{"path": "kv/", "type": "kv", "options": nil}})
		default:
			v.reply(w, http.StatusForbidden, map[string]any{"errors": []string{"permission denied"}})
		}
		return
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if rest, ok := strings.CutPrefix(path, "secret/data/"); ok {
		if f, ok := v.secrets["secret/"+rest]; ok {
			v.reply(w, http.StatusOK, map[string]any{"data": map[string]any{"data": f, "metadata": map[string]any{"version": 1}}})
			return
		}
	} else if f, ok := v.secrets[path]; ok && strings.HasPrefix(path, "kv/") {
		v.reply(w, http.StatusOK, map[string]any{"data": f})
		return
	}
	v.reply(w, http.StatusNotFound, map[string]any{"errors": []string{}})
}

// degradedOf returns the entities the daemon reports degraded, with their
// reasons.
func degradedOf(tb testing.TB, d *daemon) map[string]string {
	tb.Helper()
	_, raw := d.status()
	var st struct {
		Degraded []struct {
			Entity, Reason string
		} `json:"degraded"`
	}
	if err := json.Unmarshal(raw, &st); err != nil {
		tb.Fatalf("status %s: %v", raw, err)
	}
	m := map[string]string{}
	for _, e := range st.Degraded {
		m[e.Entity] = e.Reason
	}
	return m
}

// TestVaultOutageThroughBinary is issue 17.1 and 17.8 through the binary:
// with every entity's pair in Vault, a hung Vault and then a Vault that
// refuses connections show as every entity degraded within seconds, while
// the gateway keeps serving; recovery clears it; the daemon tells Vault it
// is certops.
func TestVaultOutageThroughBinary(t *testing.T) {
	requireBinary(t)
	const n = 20
	ca := newCA(t, "e2e vault CA")
	vault := newVaultServer(t, "hvs.e2e")
	dir := t.TempDir()
	var first *testLeaf
	for i := range n {
		name := fmt.Sprintf("v%02d", i)
		sni := name + ".vault.test"
		leaf := ca.issue(t, algECDSA, sni, []string{sni})
		if first == nil {
			first = leaf
		}
		vault.put("secret/tls/"+name, map[string]string{"cert": string(leaf.certPEM), "key": string(leaf.keyPEM)})
		head := entity{name: name, snis: []string{sni}}.yaml()
		writeFile(t, dir, name+".yaml", fmt.Appendf(head, "cert: $secret://vault/secret/tls/%s/cert\nkey: $secret://vault/secret/tls/%s/key\n", name, name))
	}
	d := runDaemon(t, daemonConfig{
		args: []string{"--source", dir, "--data-dir", t.TempDir(), "--secret-refresh", "1s"},
		env:  []string{"VAULT_ADDR=" + vault.url, "VAULT_TOKEN=hvs.e2e"},
	})
	waitServed(t, d.listen, "v00.vault.test", pool(ca), first)

	vault.mu.Lock()
	for ua := range vault.agents {
		if !strings.HasPrefix(ua, "certops/") {
			t.Errorf("User-Agent %q sent to Vault, want certops/<version>", ua)
		}
	}
	vault.mu.Unlock()

	outage := func(what string, start func(), stop func()) {
		t.Helper()
		began := time.Now()
		start()
		eventually(t, 30*time.Second, "every entity degraded ("+what+")", func() (bool, string) {
			deg := degradedOf(t, d)
			return len(deg) == n, fmt.Sprintf("%d of %d degraded", len(deg), n)
		})
		t.Logf("%s: %d entities degraded %v after the outage began (refresh every 1s)", what, n, time.Since(began).Round(10*time.Millisecond))
		for name, reason := range degradedOf(t, d) {
			if ref := "$secret://vault/secret/tls/" + name + "/"; strings.Count(reason, ref) != 1 {
				t.Errorf("degraded reason of %s = %q, want the reference named once", name, reason)
			}
		}
		if !strings.Contains(d.logs.String(), "secret store unreachable") {
			t.Errorf("no Warn naming the store unreachable in the logs (%s)", what)
		}
		waitServed(t, d.listen, "v00.vault.test", pool(ca), first)
		stop()
	}
	outage("hung server", func() { vault.setHang(true) }, func() { vault.setHang(false) })
	eventually(t, 60*time.Second, "recovery after the hang", func() (bool, string) {
		deg := degradedOf(t, d)
		return len(deg) == 0, fmt.Sprintf("%d still degraded", len(deg))
	})
	outage("connection refused", func() { vault.srv.Close() }, func() {})
}

// TestAPISIXSecretManagersThroughBinary is issue 18.8 through the binary:
// $secret://vault/<manager-id>/<key-path>/<field>, as an APISIX repository
// writes it, resolves through the secret object of --secret-managers
// (its token from $env://), with no VAULT_* settings at all; validate warns
// about an id the file does not hold.
func TestAPISIXSecretManagersThroughBinary(t *testing.T) {
	requireBinary(t)
	ca := newCA(t, "e2e apisix CA")
	leaf := ca.issue(t, algECDSA, "shop.apisix.test", []string{"shop.apisix.test"})
	vault := newVaultServer(t, "hvs.apisix")
	vault.put("kv/apisix/ssl/shop", map[string]string{"cert": string(leaf.certPEM), "key": string(leaf.keyPEM)})
	repo := t.TempDir()
	writeFile(t, repo, "ssls.yaml", []byte("ssls:\n  - id: shop\n    snis: [shop.apisix.test]\n    certificates:\n"+
		"      - certificate: $secret://vault/1/ssl/shop/cert\n        key: $secret://vault/1/ssl/shop/key\n"))
	managers := filepath.Join(t.TempDir(), "secret-managers.yaml")
	writeFile(t, filepath.Dir(managers), filepath.Base(managers), []byte("vault:\n  - id: \"1\"\n    uri: "+vault.url+
		"\n    prefix: kv/apisix\n    token: $env://APISIX_VAULT_TOKEN\n"))
	d := runDaemon(t, daemonConfig{
		args: []string{"--source", repo, "--data-dir", t.TempDir(), "--secret-managers", managers},
		env:  []string{"APISIX_VAULT_TOKEN=hvs.apisix"},
	})
	waitServed(t, d.listen, "shop.apisix.test", pool(ca), leaf)

	r := certops(t, repo, nil, "validate", ".", "--secret-managers", managers)
	if r.code != 0 || strings.Contains(r.stdout+r.stderr, "warning:") {
		t.Errorf("validate with the managers file: exit %d\n%s%s; want valid without warnings", r.code, r.stdout, r.stderr)
	}
	writeFile(t, repo, "ssls.yaml", []byte("ssls:\n  - id: shop\n    snis: [shop.apisix.test]\n    certificates:\n"+
		"      - certificate: $secret://vault/2/ssl/shop/cert\n        key: $secret://vault/1/ssl/shop/key\n"))
	r = certops(t, repo, nil, "validate", ".", "--secret-managers", managers)
	if !strings.Contains(r.stdout+r.stderr, `"2" is not a vault secret manager id`) {
		t.Errorf("validate with an unknown manager id: exit %d\n%s%s; want a warning naming it", r.code, r.stdout, r.stderr)
	}
}
