package fleet

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestKeyFilesFromOpenSSL loads keys made by the commands DESIGN.md 9
// names, and checks that a signature made with the one verifies with the
// other.
func TestKeyFilesFromOpenSSL(t *testing.T) {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed")
	}
	dir := t.TempDir()
	priv, pub, data := filepath.Join(dir, "signing.pem"), filepath.Join(dir, "trusted.pem"), filepath.Join(dir, "data.key")
	for _, args := range [][]string{
		{"genpkey", "-algorithm", "ed25519", "-out", priv},
		{"pkey", "-in", priv, "-pubout", "-out", pub},
		{"rand", "-base64", "-out", data, "32"},
	} {
		if out, err := exec.Command("openssl", args...).CombinedOutput(); err != nil {
			t.Fatalf("openssl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	sk, err := LoadSigningKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	tk, err := LoadTrustedKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	if sk.ID() != tk.ID() {
		t.Errorf("signing key id %s, trusted key id %s: want equal", sk.ID(), tk.ID())
	}
	env, err := sign(&root{Fleet: "f", Revision: "r", Sequence: 1, Pages: []string{digestOf(nil)}}, sk)
	if err != nil {
		t.Fatal(err)
	}
	if _, signer, err := verify(env, []TrustedKey{tk}); err != nil || signer != tk.ID() {
		t.Errorf("verify(openssl keys) = %q, %v; want %q, nil", signer, err, tk.ID())
	}
	if _, err := LoadDataKey(data); err != nil {
		t.Errorf("LoadDataKey(openssl rand -base64 32) = %v", err)
	}
}

func TestLoadKeyErrors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name string
		load func() error
		want string
	}{
		{"signing key missing", func() error { _, err := LoadSigningKey(filepath.Join(dir, "nope")); return err }, "no such file"},
		{"signing key not PEM", func() error { _, err := LoadSigningKey(write("a", "hello")); return err }, "want a PEM"},
		{"trusted key is private", func() error {
			_, err := LoadTrustedKey(write("b", "-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n"))
			return err
		}, "PUBLIC KEY"},
		{"data key short", func() error { _, err := LoadDataKey(write("c", "AAAA\n")); return err }, "3 bytes, want 32"},
		{"data key not base64", func() error { _, err := LoadDataKey(write("d", "!!!\n")); return err }, "not base64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.load()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestSealBindsContext(t *testing.T) {
	k := newTestKeys(t)
	secret := []byte("-----BEGIN PRIVATE KEY-----\nsecret\n-----END PRIVATE KEY-----\n")
	s1 := k.dk.sealDeterministic("f\x00a\x00key", secret)
	if s2 := k.dk.sealDeterministic("f\x00a\x00key", secret); s1 != s2 {
		t.Error("sealing twice gave different values: the blob digest would change every revision")
	}
	if bytes.Contains([]byte(s1), []byte("secret")) {
		t.Error("sealed value contains the plaintext")
	}
	if got, err := k.dk.open("f\x00a\x00key", s1); err != nil || !bytes.Equal(got, secret) {
		t.Errorf("open = %q, %v; want the plaintext", got, err)
	}
	if _, err := k.dk.open("f\x00b\x00key", s1); err == nil {
		t.Error("a value sealed for entity a opened for entity b")
	}
	other := newTestKeys(t)
	if _, err := other.dk.open("f\x00a\x00key", s1); err == nil {
		t.Error("a value opened with another data key")
	}
}
