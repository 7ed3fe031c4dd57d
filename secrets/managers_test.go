package secrets

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestParseManagers(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // in the error; "" = valid
	}{
		{"vault and aws", `vault:
  - id: "1"
    uri: http://127.0.0.1:8200
    prefix: kv/apisix
    token: $env://VAULT_TOKEN
aws:
  - id: prod
    region: eu-west-1
    access_key_id: $env://AK
    secret_access_key: $env://SK
    endpoint_url: http://127.0.0.1:4566
`, ""},
		{"empty file", ``, ""},
		{"unknown provider", "gcp:\n  - id: x\n", "m.yaml:1:1: gcp: unknown secret manager provider (want vault or aws)"},
		{"env has no managers", "env:\n  - id: x\n", "m.yaml:1:1: env: unknown secret manager provider"},
		{"not a list", "vault: {id: x}\n", "m.yaml:1:8: vault: want a list of secret managers"},
		{"missing field", "vault:\n  - id: a\n    uri: http://v\n    prefix: kv\n", "m.yaml:2:5: vault[0]: missing field token"},
		{"unknown field", "vault:\n  - {id: a, uri: http://v, prefix: kv, token: t, kv_version: 2}\n", "m.yaml:2:50: vault[0].kv_version: unknown field (want id, uri, prefix, token, namespace)"},
		{"duplicate id", "vault:\n  - {id: a, uri: http://v, prefix: kv, token: t}\n  - {id: a, uri: http://w, prefix: kv, token: t}\n", `vault[1].id: duplicate id "a" (first at m.yaml:2:6)`},
		{"duplicate key", "vault:\n  - {id: a, uri: http://v, prefix: kv, token: t, token: u}\n", "m.yaml:2:50: vault[0].token: duplicate key (first at m.yaml:2:40)"},
		{"id with a slash", "vault:\n  - {id: a/b, uri: http://v, prefix: kv, token: t}\n", `"a/b" is not a secret manager id`},
		{"not YAML", "vault: [\n", "m.yaml: yaml:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseManagers("m.yaml", []byte(tt.in))
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("ParseManagers = %v, want no error", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("ParseManagers = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

func TestManagersCheckReference(t *testing.T) {
	m, err := ParseManagers("m.yaml", []byte("vault:\n  - {id: \"1\", uri: http://v, prefix: kv/apisix, token: t}\n"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ref  string
		warn bool
	}{
		{"$secret://vault/1/shop/key", false},
		{"$secret://vault/2/shop/key", true},
		{"$secret://aws/prod/shop", true},
		{"$env://SHOP_KEY", false},
	}
	for _, tt := range tests {
		got := m.CheckReference(tt.ref)
		if (got != "") != tt.warn {
			t.Errorf("CheckReference(%q) = %q, want a warning: %v", tt.ref, got, tt.warn)
		}
	}
	if got := (*Managers)(nil).CheckReference("$secret://vault/2/shop/key"); got != "" {
		t.Errorf("CheckReference without a managers file = %q, want none", got)
	}
}

// TestVaultManagers is issue 18.8: $secret://vault/<id>/<key-path>/<field>
// reads GET <uri>/v1/<prefix>/<key-path> of the manager's server with its
// token, KV v1 and v2 alike, while other first segments keep their meaning.
func TestVaultManagers(t *testing.T) {
	apisix := newVaultDouble(t) // the managers' server
	apisix.tokens["hvs.apisix"] = time.Time{}
	apisix.mounts = map[string]string{"kv/": "", "kv2/": "2"}
	apisix.put("kv/apisix/shop", map[string]any{"key": "v1-key"})
	apisix.put("kv2/apisix/shop", map[string]any{"key": "v2-key"})
	other := newVaultDouble(t) // VAULT_ADDR's server
	other.put("secret/tls/shop", map[string]any{"key": "env-key"})

	file := "vault:\n" +
		"  - {id: \"1\", uri: " + apisix.srv.URL + ", prefix: kv/apisix, token: $env://APISIX_VAULT_TOKEN}\n" +
		"  - {id: v2, uri: " + apisix.srv.URL + ", prefix: kv2/apisix, token: $env://APISIX_VAULT_TOKEN}\n" +
		"  - {id: v2-data, uri: " + apisix.srv.URL + ", prefix: kv2/data/apisix, token: $env://APISIX_VAULT_TOKEN}\n"
	m, err := ParseManagers("managers.yaml", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Options{Managers: m, HTTPClient: &http.Client{}, Getenv: mapEnv(map[string]string{
		"APISIX_VAULT_TOKEN": "hvs.apisix", "VAULT_ADDR": other.srv.URL, "VAULT_TOKEN": "root-token",
	})})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ ref, want string }{
		{"$secret://vault/1/shop/key", "v1-key"},
		{"$secret://vault/v2/shop/key", "v2-key"},
		{"$secret://vault/v2-data/shop/key", "v2-key"}, // a prefix written for APISIX's KV v2
		{"$secret://vault/secret/tls/shop/key", "env-key"},
	}
	for _, tt := range tests {
		if got, err := c.Resolve(t.Context(), tt.ref); err != nil || string(got) != tt.want {
			t.Errorf("Resolve(%q) = %q, %v, want %q", tt.ref, got, err, tt.want)
		}
	}
	for _, r := range apisix.log() {
		if strings.Contains(r, "/secret/") {
			t.Errorf("the managers' server got %s, meant for VAULT_ADDR", r)
		}
	}
	if n := other.count("GET /v1/kv"); n != 0 {
		t.Errorf("VAULT_ADDR's server got %d manager reads", n)
	}

	t.Run("unset token variable", func(t *testing.T) {
		c, err := New(Options{Managers: m, Getenv: mapEnv(map[string]string{})})
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Resolve(t.Context(), "$secret://vault/1/shop/key")
		if err == nil || !strings.Contains(err.Error(), "managers.yaml:2:") || !strings.Contains(err.Error(), "vault[0].token: environment variable APISIX_VAULT_TOKEN is not set") {
			t.Errorf("Resolve with the token variable unset = %v, want the file, line and field", err)
		}
	})
}

// TestAWSManagers: $secret://aws/<id>/<secret-id>[/<field>] reads AWS with
// the manager's region, endpoint and credentials (SigV4 checked by the
// double).
func TestAWSManagers(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	d := newAWSDouble(t)
	d.put("apisix/shop", `{"key":"aws-key"}`)
	file := "aws:\n  - {id: prod, region: " + awsTestRegion + ", endpoint_url: " + d.srv.URL +
		", access_key_id: $env://AK, secret_access_key: $env://SK}\n"
	m, err := ParseManagers("managers.yaml", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	c, err := New(Options{Managers: m, AWSConfig: d.config(), Getenv: mapEnv(map[string]string{"AK": awsTestKeyID, "SK": awsTestSecret})})
	if err != nil {
		t.Fatal(err)
	}
	ref := "$secret://aws/prod/apisix/shop/key"
	if got, err := c.Resolve(t.Context(), ref); err != nil || string(got) != "aws-key" {
		t.Errorf("Resolve(%q) = %q, %v, want aws-key", ref, got, err)
	}
}
