package admin

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

const testSecret = "s3cr3t-webhook"

func sign(body string) string {
	mac := hmac.New(sha256.New, []byte(testSecret))
	mac.Write([]byte(body))
	return "sha256=" + hex.EncodeToString(mac.Sum(nil))
}

func TestWebhooks(t *testing.T) {
	pushMain := `{"ref":"refs/heads/main","after":"0123"}`
	pushOther := `{"ref":"refs/heads/feature","after":"0123"}`
	big := `{"ref":"refs/heads/main","pad":"` + strings.Repeat("x", MaxWebhookBody) + `"}`
	tests := []struct {
		name        string
		path        string
		headers     map[string]string
		body        string
		wantCode    int
		wantResult  string
		wantTrigger int
	}{
		{"github push followed ref", "/hooks/github", map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": sign(pushMain)}, pushMain, 202, "triggered", 1},
		{"github push other ref", "/hooks/github", map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": sign(pushOther)}, pushOther, 200, "ignored", 0},
		{"github ping", "/hooks/github", map[string]string{"X-GitHub-Event": "ping", "X-Hub-Signature-256": sign(`{"zen":"x"}`)}, `{"zen":"x"}`, 200, "ping", 0},
		{"github other event", "/hooks/github", map[string]string{"X-GitHub-Event": "issues", "X-Hub-Signature-256": sign(`{}`)}, `{}`, 200, "ignored", 0},
		{"github bad signature", "/hooks/github", map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": sign(pushOther)}, pushMain, 401, "unauthorized", 0},
		{"github signature of other secret", "/hooks/github", map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": "sha256=" + strings.Repeat("ab", 32)}, pushMain, 401, "unauthorized", 0},
		{"github missing signature", "/hooks/github", map[string]string{"X-GitHub-Event": "push"}, pushMain, 401, "unauthorized", 0},
		{"github oversized", "/hooks/github", map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": sign(big)}, big, 413, "too_large", 0},
		{"github not json", "/hooks/github", map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": sign("nope")}, "nope", 400, "bad_request", 0},
		{"github push without ref", "/hooks/github", map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": sign("{}")}, "{}", 400, "bad_request", 0},
		{"github form-encoded push", "/hooks/github", map[string]string{"X-GitHub-Event": "push", "Content-Type": "application/x-www-form-urlencoded", "X-Hub-Signature-256": sign("payload=" + url.QueryEscape(pushMain))}, "payload=" + url.QueryEscape(pushMain), 202, "triggered", 1},
		{"github form-encoded other ref", "/hooks/github", map[string]string{"X-GitHub-Event": "push", "Content-Type": "application/x-www-form-urlencoded", "X-Hub-Signature-256": sign("payload=" + url.QueryEscape(pushOther))}, "payload=" + url.QueryEscape(pushOther), 200, "ignored", 0},
		{"gitlab push", "/hooks/gitlab", map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": testSecret}, pushMain, 202, "triggered", 1},
		{"gitlab tag push other", "/hooks/gitlab", map[string]string{"X-Gitlab-Event": "Tag Push Hook", "X-Gitlab-Token": testSecret}, `{"ref":"refs/tags/v1"}`, 200, "ignored", 0},
		{"gitlab bad token", "/hooks/gitlab", map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "wrong"}, pushMain, 401, "unauthorized", 0},
		{"gitlab missing token", "/hooks/gitlab", map[string]string{"X-Gitlab-Event": "Push Hook"}, pushMain, 401, "unauthorized", 0},
		{"gitlab oversized", "/hooks/gitlab", map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": testSecret}, big, 413, "too_large", 0},
		{"generic empty body", "/hooks/generic", map[string]string{"X-Signature-256": sign("")}, "", 202, "triggered", 1},
		{"generic bare hex", "/hooks/generic", map[string]string{"X-Signature-256": strings.TrimPrefix(sign(pushMain), "sha256=")}, pushMain, 202, "triggered", 1},
		{"generic other ref", "/hooks/generic", map[string]string{"X-Signature-256": sign(pushOther)}, pushOther, 200, "ignored", 0},
		{"generic bad signature", "/hooks/generic", map[string]string{"X-Signature-256": sign("x")}, "y", 401, "unauthorized", 0},
		{"generic missing signature", "/hooks/generic", nil, "x", 401, "unauthorized", 0},
		{"generic short ref name", "/hooks/generic", map[string]string{"X-Signature-256": sign(`{"ref":"main"}`)}, `{"ref":"main"}`, 202, "triggered", 1},
		{"generic short other ref", "/hooks/generic", map[string]string{"X-Signature-256": sign(`{"ref":"master"}`)}, `{"ref":"master"}`, 200, "ignored", 0},
		{"github branch deleted", "/hooks/github", map[string]string{"X-GitHub-Event": "push", "X-Hub-Signature-256": sign(`{"ref":"refs/heads/main","deleted":true,"after":"` + zeroCommit + `"}`)}, `{"ref":"refs/heads/main","deleted":true,"after":"` + zeroCommit + `"}`, 200, "ignored", 0},
		{"gitlab branch deleted", "/hooks/gitlab", map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": testSecret}, `{"ref":"refs/heads/main","after":"` + zeroCommit + `"}`, 200, "ignored", 0},
		{"gitlab deleted field", "/hooks/gitlab", map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": testSecret}, `{"ref":"refs/heads/main","deleted":true}`, 200, "ignored", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &fakeRec{}
			var logs bytes.Buffer
			s := New(Options{
				Reconciler:    rec,
				WebhookSecret: []byte(testSecret),
				Ref:           "main",
				Logger:        slog.New(slog.NewJSONHandler(&logs, nil)),
			})
			for _, h := range []http.Handler{s.Handler(), s.WebhookHandler()} {
				before := rec.triggers.Load()
				req := httptest.NewRequest(http.MethodPost, tt.path, strings.NewReader(tt.body))
				req.RemoteAddr = "192.0.2.7:4242"
				for k, v := range tt.headers {
					req.Header.Set(k, v)
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != tt.wantCode {
					t.Errorf("POST %s = %d, want %d; body %s", tt.path, w.Code, tt.wantCode, w.Body)
				}
				var reply webhookReply
				if err := json.Unmarshal(w.Body.Bytes(), &reply); err != nil {
					t.Fatalf("reply %q is not JSON: %v", w.Body, err)
				}
				if reply.Result != tt.wantResult {
					t.Errorf("POST %s result = %q, want %q (reason %q)", tt.path, reply.Result, tt.wantResult, reply.Reason)
				}
				if got := int(rec.triggers.Load() - before); got != tt.wantTrigger {
					t.Errorf("POST %s triggered %d reconciles, want %d", tt.path, got, tt.wantTrigger)
				}
			}
			if tt.wantCode == 401 || tt.wantCode == 413 {
				if !strings.Contains(logs.String(), `"level":"WARN"`) || !strings.Contains(logs.String(), `"remote_addr":"192.0.2.7:4242"`) {
					t.Errorf("refusal not logged at Warn with the remote address; logs:\n%s", logs.String())
				}
			}
			if strings.Contains(logs.String(), testSecret) {
				t.Errorf("webhook secret in the logs:\n%s", logs.String())
			}
			// Counted once per handler.
			got := counterValue(t, s.metrics, "certops_webhook_requests_total", map[string]string{
				"provider": strings.TrimPrefix(tt.path, "/hooks/"), "result": tt.wantResult})
			if got != 2 {
				t.Errorf("certops_webhook_requests_total{%s,%s} = %v, want 2", tt.path, tt.wantResult, got)
			}
		})
	}
}

func TestWebhooksWithoutSecretAre404(t *testing.T) {
	rec := &fakeRec{}
	s := New(Options{Reconciler: rec})
	for _, p := range []string{"github", "gitlab", "generic"} {
		body := `{"ref":"refs/heads/main"}`
		req := httptest.NewRequest(http.MethodPost, "/hooks/"+p, strings.NewReader(body))
		req.Header.Set("X-Hub-Signature-256", sign(body))
		w := httptest.NewRecorder()
		s.Handler().ServeHTTP(w, req)
		if w.Code != http.StatusNotFound {
			t.Errorf("POST /hooks/%s without a secret = %d, want 404", p, w.Code)
		}
	}
	if n := rec.triggers.Load(); n != 0 {
		t.Errorf("triggered %d reconciles without a webhook secret, want 0", n)
	}
}

func TestRefMatches(t *testing.T) {
	tests := []struct {
		followed, pushed, defaultBranch string
		want                            bool
	}{
		{"", "refs/heads/anything", "", true},
		{"", "refs/heads/trunk", "trunk", true},
		{"", "refs/heads/feature", "trunk", false},
		{"main", "", "", true},
		{"main", "refs/heads/main", "", true},
		{"main", "refs/heads/main2", "", false},
		{"main", "refs/heads/feature/main", "", false},
		{"v1.0", "refs/tags/v1.0", "", true},
		{"refs/heads/main", "refs/heads/main", "", true},
		{"refs/heads/main", "refs/tags/main", "", false},
		{"0123456789abcdef0123456789abcdef01234567", "refs/heads/main", "", false},
		// A generic sender may write a short name (issue 18 item 11).
		{"master", "master", "", true},
		{"refs/heads/master", "master", "", true},
		{"master", "refs/heads/master", "", true},
		{"v1.0", "v1.0", "", true},
		{"refs/tags/v1.0", "v1.0", "", true},
		{"refs/tags/v1.0", "v1.1", "", false},
		{"master", "main", "", false},
		{"", "trunk", "trunk", true},
		{"", "feature", "trunk", false},
	}
	for _, tt := range tests {
		if got := refMatches(tt.followed, tt.pushed, tt.defaultBranch); got != tt.want {
			t.Errorf("refMatches(%q, %q, %q) = %v, want %v", tt.followed, tt.pushed, tt.defaultBranch, got, tt.want)
		}
	}
}

// FuzzParsePush feeds arbitrary payloads and event names to the webhook
// parser: it must never panic, and a push it accepts has a ref or none.
func FuzzParsePush(f *testing.F) {
	f.Add("github", "push", []byte(`{"ref":"refs/heads/main","commits":[]}`))
	f.Add("github", "ping", []byte(`{"zen":"Keep it logically awesome."}`))
	f.Add("gitlab", "Push Hook", []byte(`{"object_kind":"push","ref":"refs/heads/main"}`))
	f.Add("generic", "", []byte(`{"ref":null}`))
	f.Add("generic", "", []byte(``))
	f.Add("github", "push", []byte(`{"ref":1}`))
	f.Add("gitlab", "Tag Push Hook", []byte("\xff\xfe{"))
	f.Add("github", "push", []byte("payload=%7B%22ref%22%3A%22refs%2Fheads%2Fmain%22%7D"))
	f.Fuzz(func(t *testing.T, provider, event string, body []byte) {
		if form, err := githubPayload("application/x-www-form-urlencoded", body); err == nil {
			parsePush(ProviderGitHub, "push", form)
		}
		p, err := parsePush(provider, event, body)
		if err != nil {
			return
		}
		if p.Ping && p.Ignore != "" {
			t.Errorf("parsePush(%q, %q) is both a ping and ignored", provider, event)
		}
		if provider != ProviderGeneric && !p.Ping && p.Ignore == "" && p.Ref == "" {
			t.Errorf("parsePush(%q, %q, %q) accepted a push without a ref", provider, event, body)
		}
		_ = refMatches("", p.Ref, p.DefaultBranch)
	})
}

// TestWebhookDefaultBranch covers a daemon without --ref: it follows the
// default branch, which GitHub and GitLab name in their payloads.
func TestWebhookDefaultBranch(t *testing.T) {
	tests := []struct {
		name, path, event, eventHeader, body string
		wantCode                             int
	}{
		{"github default", "/hooks/github", "push", "X-GitHub-Event", `{"ref":"refs/heads/trunk","repository":{"default_branch":"trunk"}}`, 202},
		{"github feature", "/hooks/github", "push", "X-GitHub-Event", `{"ref":"refs/heads/feature","repository":{"default_branch":"trunk"}}`, 200},
		{"gitlab default", "/hooks/gitlab", "Push Hook", "X-Gitlab-Event", `{"ref":"refs/heads/trunk","project":{"default_branch":"trunk"}}`, 202},
		{"gitlab feature", "/hooks/gitlab", "Push Hook", "X-Gitlab-Event", `{"ref":"refs/heads/feature","project":{"default_branch":"trunk"}}`, 200},
		{"generic without default", "/hooks/generic", "", "", `{"ref":"refs/heads/feature"}`, 202},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Options{Reconciler: &fakeRec{}, WebhookSecret: []byte(testSecret)})
			req := httptest.NewRequest(http.MethodPost, tt.path, strings.NewReader(tt.body))
			if tt.eventHeader != "" {
				req.Header.Set(tt.eventHeader, tt.event)
			}
			req.Header.Set("X-Hub-Signature-256", sign(tt.body))
			req.Header.Set("X-Signature-256", sign(tt.body))
			req.Header.Set("X-Gitlab-Token", testSecret)
			w := httptest.NewRecorder()
			s.Handler().ServeHTTP(w, req)
			if w.Code != tt.wantCode {
				t.Errorf("POST %s %s = %d, want %d; body %s", tt.path, tt.body, w.Code, tt.wantCode, w.Body)
			}
		})
	}
}
