package e2e

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// githubPush is the body of a GitHub push event for ref at commit after,
// with the fields certops reads (GitHub sends many more): the repository's
// default branch is what a daemon without --ref follows.
func githubPush(ref, after string) []byte {
	return fmt.Appendf(nil, `{"ref":%q,"before":"0000000000000000000000000000000000000000","after":%q,`+
		`"repository":{"full_name":"e2e/repo","default_branch":"main","clone_url":"https://example.invalid/e2e/repo.git"},"pusher":{"name":"e2e"}}`, ref, after)
}

// sendGitHubHook posts body to /hooks/github signed with secret as GitHub
// does (X-Hub-Signature-256: sha256=HMAC-SHA256 hex) and returns the status.
func sendGitHubHook(tb testing.TB, d *daemon, secret, body []byte) int {
	tb.Helper()
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	h := http.Header{
		"Content-Type":        {"application/json"},
		"X-Github-Event":      {"push"},
		"X-Github-Delivery":   {fmt.Sprintf("e2e-%d", time.Now().UnixNano())},
		"X-Hub-Signature-256": {"sha256=" + hex.EncodeToString(mac.Sum(nil))},
	}
	code, _ := httpDo(tb, http.MethodPost, "http://"+d.admin+"/hooks/github", h, body)
	return code
}

// hookDaemon starts a daemon that follows repo through git daemon with
// polling off, so only webhooks make it fetch; it returns the daemon and
// the webhook secret.
func hookDaemon(tb testing.TB, f *fleet) (*daemon, []byte) {
	tb.Helper()
	url, _ := gitDaemon(tb, f.repo.root, f.repo.name)
	secret := []byte("e2e webhook secret, not a key")
	dir := tb.TempDir()
	writeFile(tb, dir, "hook-secret", secret)
	d := startDaemon(tb, "--source", url, "--data-dir", tb.TempDir(), "--interval", "0",
		"--webhook-secret-file", filepath.Join(dir, "hook-secret"))
	return d, secret
}

// TestGitHubWebhook checks POST /hooks/github with polling off: a push
// signed with the wrong secret is refused and changes nothing; a push to
// another branch is acknowledged and ignored; a correctly signed push makes
// the daemon fetch and serve the new certificate.
func TestGitHubWebhook(t *testing.T) {
	requireBinary(t)
	f := newFleet(t, 1)
	leafA := f.shop(t)
	revA := f.repo.commit(t, "first")
	d, secret := hookDaemon(t, f)
	roots := pool(f.ca)
	waitApplied(t, d, revA)
	waitServed(t, d.listen, "shop.test", roots, leafA)

	leafB := f.shop(t)
	revB := f.repo.commit(t, "rotate")
	body := githubPush("refs/heads/main", revB)

	if code := sendGitHubHook(t, d, []byte("wrong secret"), body); code != http.StatusUnauthorized && code != http.StatusForbidden {
		t.Errorf("webhook with a wrong signature: status %d, want 401 or 403", code)
	}
	if code := sendGitHubHook(t, d, secret, githubPush("refs/heads/other", revB)); code < 200 || code > 299 {
		t.Errorf("webhook for another branch: status %d, want 2xx (acknowledged and ignored)", code)
	}
	// A negative can only be observed over a window: for two seconds the
	// daemon must keep serving revA, since polling is off and no valid
	// webhook for main arrived.
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if rev := d.appliedRevision(); rev != revA {
			t.Fatalf("after a refused or ignored webhook: applied %s, want %s unchanged", rev, revA)
		}
	}

	if code := sendGitHubHook(t, d, secret, body); code < 200 || code > 299 {
		t.Fatalf("webhook with a valid signature: status %d, want 2xx", code)
	}
	waitServed(t, d.listen, "shop.test", roots, leafB)
	waitApplied(t, d, revB)
}

// BenchmarkWebhookToServed measures, over 20 pushes, the time from sending
// a signed GitHub push webhook to the first full handshake that is served
// the new certificate (git daemon on loopback, polling off). It reports
// p50 and p99 (with 20 samples, p99 is the slowest).
func BenchmarkWebhookToServed(b *testing.B) {
	if testing.Short() {
		b.Skip("e2e: skipped under -short")
	}
	f := newFleet(b, 1)
	leaf := f.shop(b)
	rev := f.repo.commit(b, "first")
	d, secret := hookDaemon(b, f)
	roots := pool(f.ca)
	waitApplied(b, d, rev)
	const pushes = 20
	var lat []time.Duration
	b.ResetTimer()
	for range b.N {
		for range pushes {
			b.StopTimer()
			leaf = f.shop(b)
			rev = f.repo.commit(b, "rotate")
			b.StartTimer()
			start := time.Now()
			if code := sendGitHubHook(b, d, secret, githubPush("refs/heads/main", rev)); code < 200 || code > 299 {
				b.Fatalf("webhook: status %d", code)
			}
			waitServed(b, d.listen, "shop.test", roots, leaf)
			lat = append(lat, time.Since(start))
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[(len(lat)*99-1)/100].Microseconds())/1000, "p99-ms")
}

// TestOtherWebhooks checks the GitLab hook (X-Gitlab-Token) and the generic
// one (HMAC-SHA256 of the body in X-Signature-256) with polling off: a
// wrong secret is refused, the right one makes the daemon serve the pushed
// certificate; and a body over 1 MiB is refused even when signed.
func TestOtherWebhooks(t *testing.T) {
	requireBinary(t)
	f := newFleet(t, 0)
	f.shop(t)
	f.repo.commit(t, "first")
	d, secret := hookDaemon(t, f)
	roots := pool(f.ca)
	sign := func(key, body []byte) string {
		mac := hmac.New(sha256.New, key)
		mac.Write(body)
		return "sha256=" + hex.EncodeToString(mac.Sum(nil))
	}
	hooks := []struct {
		provider string
		body     func(rev string) []byte
		header   func(key, body []byte) http.Header
	}{
		{
			"gitlab",
			func(rev string) []byte {
				return fmt.Appendf(nil, `{"object_kind":"push","ref":"refs/heads/main","after":%q,"project":{"default_branch":"main"}}`, rev)
			},
			func(key, _ []byte) http.Header {
				return http.Header{"Content-Type": {"application/json"}, "X-Gitlab-Event": {"Push Hook"}, "X-Gitlab-Token": {string(key)}}
			},
		},
		{
			"generic",
			func(rev string) []byte { return fmt.Appendf(nil, `{"ref":"refs/heads/main","after":%q}`, rev) },
			func(key, body []byte) http.Header {
				return http.Header{"Content-Type": {"application/json"}, "X-Signature-256": {sign(key, body)}}
			},
		},
	}
	for _, h := range hooks {
		t.Run(h.provider, func(t *testing.T) {
			url := "http://" + d.admin + "/hooks/" + h.provider
			leaf := f.shop(t)
			rev := f.repo.commit(t, "rotate for "+h.provider)
			body := h.body(rev)
			if code, _ := httpDo(t, http.MethodPost, url, h.header([]byte("wrong secret"), body), body); code != http.StatusUnauthorized && code != http.StatusForbidden {
				t.Errorf("%s hook with a wrong secret: status %d, want 401 or 403", h.provider, code)
			}
			if code, resp := httpDo(t, http.MethodPost, url, h.header(secret, body), body); code < 200 || code > 299 {
				t.Fatalf("%s hook: status %d %s, want 2xx", h.provider, code, resp)
			}
			waitServed(t, d.listen, "shop.test", roots, leaf)
			waitApplied(t, d, rev)

			big := append(h.body(rev), make([]byte, 2<<20)...)
			if code, _ := httpDo(t, http.MethodPost, url, h.header(secret, big), big); code < 400 || code > 499 {
				t.Errorf("%s hook with a 2 MiB body: status %d, want a 4xx refusal", h.provider, code)
			}
		})
	}
}

// TestWebhookListen checks --webhook-listen: the extra address (the one a
// Git host can reach) serves the webhooks and /healthz, and nothing else of
// the admin API.
func TestWebhookListen(t *testing.T) {
	requireBinary(t)
	f := newFleet(t, 0)
	f.shop(t)
	f.repo.commit(t, "first")
	url, _ := gitDaemon(t, f.repo.root, f.repo.name)
	secret := []byte("e2e webhook secret, not a key")
	dir := t.TempDir()
	writeFile(t, dir, "hook-secret", secret)
	hookAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	d := startDaemon(t, "--source", url, "--data-dir", t.TempDir(), "--interval", "0",
		"--webhook-secret-file", filepath.Join(dir, "hook-secret"), "--webhook-listen", hookAddr)

	leaf := f.shop(t)
	rev := f.repo.commit(t, "rotate")
	body := githubPush("refs/heads/main", rev)
	mac := hmac.New(sha256.New, secret)
	mac.Write(body)
	h := http.Header{"Content-Type": {"application/json"}, "X-Github-Event": {"push"}, "X-Hub-Signature-256": {"sha256=" + hex.EncodeToString(mac.Sum(nil))}}
	if code, resp := httpDo(t, http.MethodPost, "http://"+hookAddr+"/hooks/github", h, body); code < 200 || code > 299 {
		t.Fatalf("webhook on --webhook-listen: %d %s, want 2xx", code, resp)
	}
	waitServed(t, d.listen, "shop.test", pool(f.ca), leaf)
	if code, _ := httpDo(t, http.MethodGet, "http://"+hookAddr+"/healthz", nil, nil); code != http.StatusOK {
		t.Errorf("GET /healthz on --webhook-listen: %d, want 200", code)
	}
	for _, path := range []string{"/api/v1/status", "/api/v1/ssls", "/metrics"} {
		if code, _ := httpDo(t, http.MethodGet, "http://"+hookAddr+path, nil, nil); code != http.StatusNotFound {
			t.Errorf("GET %s on --webhook-listen: %d, want 404 (only webhooks and /healthz there)", path, code)
		}
	}
	if code, _ := httpDo(t, http.MethodPost, "http://"+hookAddr+"/api/v1/reconcile", nil, nil); code != http.StatusNotFound && code != http.StatusMethodNotAllowed {
		t.Errorf("POST /api/v1/reconcile on --webhook-listen: %d, want 404 or 405", code)
	}
}

// TestWebhookHostilePayloads posts correctly signed GitHub push webhooks
// whose bodies are not push events: each is refused with a 4xx and the
// daemon keeps serving.
func TestWebhookHostilePayloads(t *testing.T) {
	requireBinary(t)
	f := newFleet(t, 0)
	f.shop(t)
	f.repo.commit(t, "first")
	d, secret := hookDaemon(t, f)
	for name, body := range map[string][]byte{
		"empty":           nil,
		"truncated JSON":  []byte(`{"ref":`),
		"ref not string":  []byte(`{"ref":5}`),
		"array":           []byte(`[1,2,3]`),
		"deep nesting":    []byte(strings.Repeat("[", 500000)),
		"NUL bytes":       []byte("\x00\x00\x00"),
		"form, not JSON":  []byte("payload=%7B%22ref%22%3A"),
		"empty ref":       []byte(`{"ref":""}`),
		"null everything": []byte(`null`),
	} {
		t.Run(name, func(t *testing.T) {
			if code := sendGitHubHook(t, d, secret, body); code < 400 || code > 499 {
				t.Errorf("signed webhook with %s body: status %d, want 4xx", name, code)
			}
			if exited, code := d.exited(); exited {
				t.Fatalf("the daemon exited (%d) after a %s webhook:\n%s", code, name, tail(d.logs.String(), 20))
			}
		})
	}
	if code, _ := d.get("/healthz"); code != http.StatusOK {
		t.Errorf("GET /healthz after the hostile webhooks: %d, want 200", code)
	}
}
