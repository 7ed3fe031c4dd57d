package trust_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"certops/fixtures"
	"certops/trust"
)

func TestLoadDirErrors(t *testing.T) {
	ssh := fixtures.NewSSHSigningKey(t, "ci")
	priv, err := os.ReadFile(ssh.Path)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		files map[string]string
		want  []string // substrings of the error; nil: no error
	}{
		{"empty", map[string]string{"README": "keys go here"}, []string{"no *.asc or *.sshpub key"}},
		{"ssh key with comments", map[string]string{"ci.sshpub": "# the CI key\n\n" + string(ssh.Public())}, nil},
		{"bad ssh line", map[string]string{"ci.sshpub": string(ssh.Public()) + "\nssh-ed25519 not-base64\n"}, []string{"ci.sshpub:3:"}},
		{"cert-authority refused", map[string]string{"ca.sshpub": "cert-authority " + string(ssh.Public())}, []string{"ca.sshpub:1:", "cert-authority"}},
		{"bad armor", map[string]string{"x.asc": "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nnonsense\n"}, []string{"x.asc: openpgp public key"}},
		{"ssh private key", map[string]string{"k.sshpub": string(priv)}, []string{"k.sshpub:1:"}},
		{"dot-files ignored", map[string]string{".old.asc": "junk", "ci.sshpub": string(ssh.Public())}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := fixtures.WriteFiles(t, tt.files)
			k, err := trust.LoadDir(dir)
			if tt.want == nil {
				if err != nil || len(k.Keys()) != 1 {
					t.Fatalf("LoadDir(%s) = %v, %v; want one key", tt.name, k, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("LoadDir(%s) = nil error, want %q", tt.name, tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("LoadDir(%s) = %q, want it to contain %q", tt.name, err, w)
				}
			}
			if strings.Contains(err.Error(), "PRIVATE KEY") {
				t.Errorf("LoadDir(%s) error quotes key material: %q", tt.name, err)
			}
		})
	}
}

func TestLoadDirRefusesOpenPGPPrivateKey(t *testing.T) {
	k := fixtures.NewGPGKey(t, "alice")
	cmd := exec.Command("gpg", "--batch", "--armor", "--pinentry-mode", "loopback", "--passphrase", "", "--export-secret-keys", k.Email)
	cmd.Env = append(os.Environ(), "GNUPGHOME="+k.Home)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "alice.asc"), out, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := trust.LoadDir(dir); err == nil || !strings.Contains(err.Error(), "private key") {
		t.Errorf("LoadDir(secret key) = %v, want a private-key error", err)
	}
}

func TestKeysListsBothFormats(t *testing.T) {
	g, s := fixtures.NewGPGKey(t, "alice"), fixtures.NewSSHSigningKey(t, "ci")
	keys := loadDir(t, fixtures.TrustedKeysDir(t, g, s)).Keys()
	if len(keys) != 2 || keys[0].Fingerprint != g.Fingerprint || keys[1].Fingerprint != s.Fingerprint || !strings.Contains(keys[0].Identity, "alice") {
		t.Errorf("Keys() = %+v, want alice's OpenPGP key %s then ci's SSH key %s", keys, g.Fingerprint, s.Fingerprint)
	}
}

func TestParseMode(t *testing.T) {
	for _, m := range append(trust.Modes, trust.ModeOff) {
		if got, err := trust.ParseMode(m.String()); got != m || err != nil {
			t.Errorf("ParseMode(%q) = %v, %v, want %v", m.String(), got, err, m)
		}
	}
	if _, err := trust.ParseMode("HEAD"); err == nil {
		t.Errorf("ParseMode(%q) = nil error, want one", "HEAD")
	}
}
