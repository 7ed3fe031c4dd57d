package ref_test

import (
	"errors"
	"strings"
	"testing"

	"certops/secrets/ref"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name         string
		in           string
		provider     string
		path         string
		wantErr      string
		notReference bool
	}{
		{name: "env", in: "$env://SHOP_KEY", provider: "env", path: "SHOP_KEY"},
		{name: "env field, prefix in capitals", in: "$ENV://shop_key/pem", provider: "env", path: "shop_key/pem"},
		{name: "vault", in: "$secret://vault/kv/tls/shop/key", provider: "vault", path: "kv/tls/shop/key"},
		{name: "vault with a manager id", in: "$secret://vault/1/tls/shop/key", provider: "vault", path: "1/tls/shop/key"},
		{name: "aws in capitals", in: "$Secret://AWS/prod/tls/shop", provider: "aws", path: "prod/tls/shop"},
		{name: "aws ARN", in: "$secret://aws/arn:aws:secretsmanager:eu-west-1:123:secret:tls-AbC/key", provider: "aws", path: "arn:aws:secretsmanager:eu-west-1:123:secret:tls-AbC/key"},
		{name: "PEM", in: "-----BEGIN CERTIFICATE-----", notReference: true},
		{name: "other scheme", in: "$vault://kv/x", notReference: true},
		{name: "empty env", in: "$env://", wantErr: "empty path"},
		{name: "env name with a digit first", in: "$env://1X", wantErr: "environment variable name"},
		{name: "env with two fields", in: "$env://A/b/c", wantErr: "NAME/field"},
		{name: "vault without a field", in: "$secret://vault/kv", wantErr: "a path and a field"},
		{name: "vault dot-dot", in: "$secret://vault/kv/../x/key", wantErr: ". and .."},
		{name: "empty segment", in: "$secret://vault/kv//key", wantErr: "empty path segment"},
		{name: "unknown provider", in: "$secret://gcp/x/y", wantErr: `unknown provider "gcp" (want vault or aws)`},
		{name: "no path", in: "$secret://vault", wantErr: "want $secret://vault/<path>/<field> or $secret://aws/<secret-id>"},
		{name: "white space", in: "$secret://aws/a b", wantErr: "white space"},
		{name: "control character", in: "$secret://vault/a/b\x01", wantErr: "control characters"},
		{name: "aws character", in: "$secret://aws/a#b", wantErr: "not allowed in an AWS secret id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := ref.Parse(tt.in)
			switch {
			case tt.notReference:
				if !errors.Is(err, ref.ErrNotReference) || ref.Is(tt.in) {
					t.Errorf("Parse(%q) error = %v, Is = %v, want ErrNotReference", tt.in, err, ref.Is(tt.in))
				}
				if err != nil && strings.Contains(err.Error(), tt.in) {
					t.Errorf("Parse(%q) = %v: quotes a value that is not a reference", tt.in, err)
				}
			case tt.wantErr != "":
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("Parse(%q) = %+v, %v; want an error about %q", tt.in, r, err, tt.wantErr)
				}
			default:
				if err != nil || r.Provider != tt.provider || r.Path != tt.path || r.String() != tt.in {
					t.Errorf("Parse(%q) = %+v (%q), %v; want provider %q path %q", tt.in, r, r.String(), err, tt.provider, tt.path)
				}
			}
		})
	}
}

func TestRegister(t *testing.T) {
	t.Cleanup(func() { ref.Unregister("test-store") })
	ref.Register(ref.Scheme{Name: "test-store", Prefix: ref.SecretPrefix, Usage: "$secret://test-store/<x>",
		Check: func(path string, segs []string) error {
			if len(segs) != 1 {
				return errors.New("want one segment")
			}
			return nil
		}})
	if r, err := ref.Parse("$secret://test-store/x"); err != nil || r.Provider != "test-store" {
		t.Errorf("Parse of a registered provider = %+v, %v", r, err)
	}
	if _, err := ref.Parse("$secret://test-store/x/y"); err == nil || !strings.Contains(err.Error(), "want one segment") {
		t.Errorf("Parse = %v, want the scheme's own error", err)
	}
	defer func() {
		if recover() == nil {
			t.Error("Register of a taken name did not panic")
		}
	}()
	ref.Register(ref.Scheme{Name: "vault", Prefix: ref.SecretPrefix, Check: func(string, []string) error { return nil }})
}

// FuzzParse checks that Parse never panics, that a parsed reference prints
// as written, and agrees with Is.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"$env://A", "$env://A/b", "$secret://vault/kv/a/b", "$secret://aws/x/y", "$SECRET://AWS/arn:aws:x",
		"$secret://vault", "$env://", "-----BEGIN", "", "$secret://gcp/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ref.Parse(s)
		if err != nil {
			return
		}
		if !ref.Is(s) || r.String() != s || r.Path == "" {
			t.Errorf("Parse(%q) = %+v; Is %v", s, r, ref.Is(s))
		}
		if r.Provider != "env" && r.Provider != "vault" && r.Provider != "aws" {
			t.Errorf("Parse(%q): provider %q", s, r.Provider)
		}
	})
}
