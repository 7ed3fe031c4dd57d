package notify_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"certops/notify"
)

func TestParseURL(t *testing.T) {
	secret := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secret, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		raw    string
		want   string // the provider's String()
		url    string // the URL it sends to
		events string
	}{
		{"https://hooks.slack.com/services/T/B/X", "slack https://hooks.slack.com", "https://hooks.slack.com/services/T/B/X", "[]"},
		{"slack+https://chat.example.com/hooks/abc", "slack https://chat.example.com", "https://chat.example.com/hooks/abc", "[]"},
		{"https://prod-01.westeurope.logic.azure.com:443/workflows/x/triggers/manual/paths/invoke?sig=abc", "teams https://prod-01.westeurope.logic.azure.com:443", "https://prod-01.westeurope.logic.azure.com:443/workflows/x/triggers/manual/paths/invoke?sig=abc", "[]"},
		{"teams+https://example.com/flow", "teams https://example.com", "https://example.com/flow", "[]"},
		{"http://am.example.com:9093/api/v2/alerts", "alertmanager http://am.example.com:9093", "http://am.example.com:9093/api/v2/alerts", "[]"},
		{"alertmanager+http://am:9093", "alertmanager http://am:9093", "http://am:9093", "[]"},
		{"https://ops.example.com/in?provider=slack&events=stalled,failed", "slack https://ops.example.com", "https://ops.example.com/in", "[stalled failed]"},
		{"https://ops.example.com/hook?secret_file=" + secret + "&x=1", "webhook https://ops.example.com", "https://ops.example.com/hook?x=1", "[]"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			target, err := notify.ParseURL(tt.raw)
			if err != nil {
				t.Fatalf("ParseURL(%q) = %v", tt.raw, err)
			}
			if got := target.Provider.String(); got != tt.want {
				t.Errorf("ParseURL(%q) = %s, want %s", tt.raw, got, tt.want)
			}
			if got := providerURL(target.Provider); got != tt.url {
				t.Errorf("ParseURL(%q) sends to %s, want %s", tt.raw, got, tt.url)
			}
			if got := fmt.Sprint(target.Events); got != tt.events {
				t.Errorf("ParseURL(%q) events = %s, want %s", tt.raw, got, tt.events)
			}
			if w, ok := target.Provider.(*notify.Webhook); ok && string(w.Secret) != "s3cret" {
				t.Errorf("ParseURL(%q) secret = %q, want the file's trimmed content", tt.raw, w.Secret)
			}
		})
	}
	for _, bad := range []string{"ftp://x.example.com/", "https://x.example.com/?events=nope", "https://x/?secret_file=/nonexistent", "slack+https://x/?provider=teams", "pager+https://x/"} {
		if _, err := notify.ParseURL(bad); err == nil {
			t.Errorf("ParseURL(%q) = nil error, want one", bad)
		}
	}
	if _, err := notify.ParseURL("https://hooks.slack.com/services/T/B/SECRET?events=bogus"); err == nil || strings.Contains(err.Error(), "SECRET") {
		t.Errorf("ParseURL error %v quotes the URL's path", err)
	}
}

func providerURL(p notify.Provider) string {
	switch p := p.(type) {
	case *notify.Webhook:
		return p.URL
	case *notify.Slack:
		return p.URL
	case *notify.Teams:
		return p.URL
	case *notify.Alertmanager:
		return p.URL
	}
	return ""
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	urlFile := write("slack.url", "https://hooks.slack.com/services/T/B/X\n")
	secret := write("hook.secret", "k")
	good := write("good.yaml", `providers:
  - type: slack
    url_file: `+urlFile+`
    events: [stalled, failed, expiring]
  - type: webhook
    url: https://hooks.example.com/certops
    secret_file: `+secret+`
  - type: alertmanager
    url: http://am:9093
  - type: teams
    url: https://x.logic.azure.com/workflows/1
`)
	targets, err := notify.LoadConfig(good)
	if err != nil {
		t.Fatalf("LoadConfig(good) = %v", err)
	}
	var got []string
	for _, tg := range targets {
		got = append(got, fmt.Sprintf("%s%v", tg.Provider, tg.Events))
	}
	want := "[slack https://hooks.slack.com[stalled failed expiring] webhook https://hooks.example.com[] alertmanager http://am:9093[] teams https://x.logic.azure.com[]]"
	if fmt.Sprint(got) != want {
		t.Errorf("LoadConfig(good) = %v, want %v", got, want)
	}

	bad := []struct {
		name, content string
		want          []string
	}{
		{"unknown field", "providers:\n  - type: slack\n    ulr: https://x/\n", []string{"bad-unknown field.yaml", "line 3", "ulr"}},
		{"bad type", "providers:\n  - type: slack\n    url: https://x/\n  - type: pager\n    url: https://y/\n", []string{":4: providers[1]: type \"pager\""}},
		{"bad event", "providers:\n  - type: teams\n    url: https://x/\n    events: [applied, exploded]\n", []string{":2: providers[0]: events: unknown event \"exploded\""}},
		{"no url", "providers:\n  - type: teams\n", []string{":2: providers[0]: url: required"}},
		{"secret on slack", "providers:\n  - type: slack\n    url: https://x/\n    secret_file: " + secret + "\n", []string{"only the webhook provider"}},
		{"empty", "# nothing\n", []string{"no providers"}},
		{"not yaml", "providers: [\n", []string{"bad-not yaml.yaml"}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := notify.LoadConfig(write("bad-"+tt.name+".yaml", tt.content))
			if err == nil {
				t.Fatalf("LoadConfig(%s) = nil error, want %q", tt.name, tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("LoadConfig(%s) = %q, want it to contain %q", tt.name, err, w)
				}
			}
		})
	}
}
