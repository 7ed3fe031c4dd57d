package secrets

import (
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func newAWSCache(tb testing.TB, d *awsDouble) *Cache {
	tb.Helper()
	c, err := New(Options{AWSConfig: d.config(), Getenv: mapEnv(nil)})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func TestAWS(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	d := newAWSDouble(t)
	d.put("tls-shop-key", "plain-key")
	d.put("prod/tls/shop", `{"cert":"shop-cert","key":"shop-key","nested":{"k":"deep"}}`)
	d.put("prod/tls", `{"other":"x"}`) // a shorter id also exists: the longest wins
	d.binaries["bin/key"] = []byte{0x30, 0x82, 0x01, 0x00, 0xff}
	c := newAWSCache(t, d)

	tests := []struct {
		ref      string
		want     string
		requests []string // SecretIds asked for
	}{
		{"$secret://aws/tls-shop-key", "plain-key", []string{"tls-shop-key"}},
		{"$secret://aws/prod/tls/shop", `{"cert":"shop-cert","key":"shop-key","nested":{"k":"deep"}}`, []string{"prod/tls/shop"}},
		// prod/tls/shop was read above: its fields come from that read
		// (one read per secret until the next round, issue 17.6).
		{"$secret://aws/prod/tls/shop/key", "shop-key", []string{"prod/tls/shop/key"}},
		{"$secret://aws/prod/tls/shop/nested/k", "deep", []string{"prod/tls/shop/nested/k", "prod/tls/shop/nested"}},
		{"$Secret://AWS/bin/key", "\x30\x82\x01\x00\xff", []string{"bin/key"}},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			got, err := c.Resolve(t.Context(), tt.ref)
			if err != nil || string(got) != tt.want {
				t.Errorf("Resolve(%q) = %q, %v, want %q", tt.ref, got, err, tt.want)
			}
			if diff := cmp.Diff(tt.requests, d.log()); diff != "" {
				t.Errorf("GetSecretValue calls (-want +got):\n%s", diff)
			}
		})
	}
	// The split is remembered: a refresh asks for each secret id directly,
	// once per round however many fields of it are referenced.
	if err := c.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := d.log()
	slices.Sort(got)
	if diff := cmp.Diff([]string{"bin/key", "prod/tls/shop", "tls-shop-key"}, got); diff != "" {
		t.Errorf("GetSecretValue calls of a refresh round (-want +got):\n%s", diff)
	}
}

func TestAWSErrors(t *testing.T) {
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	d := newAWSDouble(t)
	d.put("prod/tls/shop", `{"key":"the-secret-key"}`)
	d.put("not-json", "-----BEGIN PRIVATE KEY-----")
	d.denied["locked"] = true
	c := newAWSCache(t, d)
	tests := []struct {
		ref      string
		want     string
		notFound bool
	}{
		{"$secret://aws/missing/secret", "no secret named by missing/secret", true},
		{"$secret://aws/prod/tls/shop/cert", "field cert", true},
		{"$secret://aws/locked", "AccessDeniedException", false},
		{"$secret://aws/not-json/key", "not JSON", false},
	}
	for _, tt := range tests {
		t.Run(tt.ref, func(t *testing.T) {
			_, err := c.Resolve(t.Context(), tt.ref)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), tt.ref) {
				t.Fatalf("Resolve(%q) = %v, want an error naming the reference and containing %q", tt.ref, err, tt.want)
			}
			if got := errors.Is(err, ErrNotFound); got != tt.notFound {
				t.Errorf("errors.Is(%v, ErrNotFound) = %v, want %v", err, got, tt.notFound)
			}
			for _, secret := range []string{"the-secret-key", "BEGIN PRIVATE KEY"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("error %q contains a secret value", err)
				}
			}
		})
	}
}

// TestAWSDefaultConfig goes through config.LoadDefaultConfig: region,
// credentials and the service endpoint all come from the standard
// environment variables.
func TestAWSDefaultConfig(t *testing.T) {
	d := newAWSDouble(t)
	d.put("tls/key", "env-configured")
	dir := t.TempDir()
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_ACCESS_KEY_ID", awsTestKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", awsTestSecret)
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_REGION", awsTestRegion)
	t.Setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", d.srv.URL)
	c, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Resolve(t.Context(), "$secret://aws/tls/key")
	if err != nil || string(got) != "env-configured" {
		t.Errorf("Resolve = %q, %v, want env-configured", got, err)
	}
}
