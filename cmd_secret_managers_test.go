package main

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	"certops/fixtures"
)

// TestValidateSecretManagers is issue 18.8: with --secret-managers, a
// reference naming a manager id that the file does not hold is a warning
// at its position; without the flag the reference keeps its usual meaning
// silently; a bad file is an error naming file, line and field.
func TestValidateSecretManagers(t *testing.T) {
	entity := "name: shop\nsnis: [shop.example.com]\ncert: $secret://vault/1/ssl/shop/cert\nkey: $secret://vault/2/ssl/shop/key\n"
	dir := fixtures.WriteFiles(t, map[string]string{
		"shop.yaml":     entity,
		"managers.yaml": "", // not an entity file: ignored by validate, empty managers for the flag
	})
	managers := fixtures.WriteFiles(t, map[string]string{
		"m.yaml":   "vault:\n  - id: \"1\"\n    uri: http://127.0.0.1:8200\n    prefix: kv/apisix\n    token: $env://APISIX_VAULT_TOKEN\n",
		"bad.yaml": "vault:\n  - id: \"1\"\n    url: http://127.0.0.1:8200\n",
	})
	tests := []struct {
		name   string
		args   []string
		code   int
		want   []string
		absent []string
	}{
		{"no flag", []string{dir}, 0, nil, []string{"secret manager"}},
		{"known and unknown id", []string{dir, "--secret-managers", managers + "/m.yaml"}, 0,
			[]string{`shop.yaml:4:6: key: warning: secret reference $secret://vault/2/ssl/shop/key: "2" is not a vault secret manager id`},
			[]string{"$secret://vault/1/"}},
		{"strict", []string{dir, "--strict", "--secret-managers", managers + "/m.yaml"}, 1, []string{"warning"}, nil},
		{"bad file", []string{dir, "--secret-managers", managers + "/bad.yaml"}, 1,
			[]string{"bad.yaml:3:5: vault[0].url: unknown field", "bad.yaml:2:5: vault[0]: missing field uri"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runValidate(t, tt.args...)
			out := stdout + stderr
			if code != tt.code {
				t.Errorf("validate %v exited %d, want %d:\n%s", tt.args, code, tt.code, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("validate %v output lacks %q:\n%s", tt.args, w, out)
				}
			}
			for _, a := range tt.absent {
				if strings.Contains(out, a) {
					t.Errorf("validate %v output has %q:\n%s", tt.args, a, out)
				}
			}
		})
	}
}

// TestJSONLogDurationsInSeconds is issue 17.7: a duration in a JSON log
// line is a number of seconds.
func TestJSONLogDurationsInSeconds(t *testing.T) {
	var buf strings.Builder
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{ReplaceAttr: durationSeconds}))
	log.Info("x", "retry_in", 1500*time.Millisecond)
	if !strings.Contains(buf.String(), `"retry_in":1.5`) {
		t.Errorf("JSON log line %s, want retry_in as 1.5 seconds", buf.String())
	}
}
