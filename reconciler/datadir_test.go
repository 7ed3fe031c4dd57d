package reconciler

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"go/build"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"certops/schema"
)

func TestStateFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	if s, err := loadState(dir); s != nil || err != nil {
		t.Fatalf("loadState(empty) = %+v, %v; want nil, nil", s, err)
	}
	want := savedState{Source: "https://git.example.com/r.git", Revision: "abc", Time: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	for range 2 {
		if err := saveState(dir, want); err != nil {
			t.Fatal(err)
		}
	}
	got, err := loadState(dir)
	if err != nil || *got != want {
		t.Errorf("loadState = %+v, %v; want %+v", got, err, want)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("data dir holds %d entries, want only %s (no temporary files left)", len(entries), stateFile)
	}
	os.WriteFile(filepath.Join(dir, stateFile), []byte("{"), 0o600)
	if _, err := loadState(dir); err == nil {
		t.Error("loadState(corrupt) = nil error")
	}
}

func TestDefaultDataDir(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", "/var/lib/x")
	if got := DefaultDataDir(); got != "/var/lib/x/certops" {
		t.Errorf("DefaultDataDir() = %q with XDG_STATE_HOME", got)
	}
	t.Setenv("XDG_STATE_HOME", "")
	if got := DefaultDataDir(); !strings.HasSuffix(got, filepath.Join(".local", "state", "certops")) {
		t.Errorf("DefaultDataDir() = %q without XDG_STATE_HOME", got)
	}
}

// TestGoGitInOneFile keeps go-git inside source_git.go (STYLE.md).
func TestGoGitInOneFile(t *testing.T) {
	pkg, err := build.ImportDir(".", 0)
	if err != nil {
		t.Fatal(err)
	}
	for imp, positions := range pkg.ImportPos {
		if !strings.HasPrefix(imp, "github.com/go-git/") {
			continue
		}
		for _, p := range positions {
			if filepath.Base(p.Filename) != "source_git.go" {
				t.Errorf("%s imported in %s; keep go-git in source_git.go", imp, p.Filename)
			}
		}
	}
}

func TestClassifyBelowRoot(t *testing.T) {
	tests := []struct {
		root, path string
		want       fileKind
	}{
		{"", "a.yaml", kindEntity},
		{"", "dir/policy.cue", kindPolicy},
		{"", ".github/x.yaml", kindIgnored},
		{"prod", "prod/a.yml", kindEntity},
		{"prod", "staging/a.yaml", kindIgnored},
		{"prod", "production/a.yaml", kindIgnored},
		{"prod", "prod/.hidden/a.yaml", kindIgnored},
		{"prod", "README.md", kindIgnored},
	}
	for _, tt := range tests {
		for _, root := range []string{tt.root, "./" + tt.root, tt.root + "/"} {
			l := newLoader(root, schema.Options{})
			if got := classify(l.root, tt.path); got != tt.want {
				t.Errorf("classify(%q, %q) = %v, want %v", root, tt.path, got, tt.want)
			}
		}
	}
}

func TestGitOriginDisplay(t *testing.T) {
	tests := []struct {
		opts GitOptions
		want string
	}{
		{GitOptions{URL: "https://bot:s3cr3t@git.example.com/r.git"}, "https://bot:xxxxx@git.example.com/r.git"},
		{GitOptions{URL: "https://git.example.com/r.git", Ref: "v1", Password: "t0k3n-value"}, "https://git.example.com/r.git@v1"},
		{GitOptions{URL: "git://127.0.0.1:9418/r.git"}, "git://127.0.0.1:9418/r.git"},
		{GitOptions{URL: "git@github.com:org/r.git", SSHKey: testSSHKey(t), InsecureIgnoreHostKey: true}, "git@github.com:org/r.git"},
	}
	for _, tt := range tests {
		o, err := NewGitOrigin(tt.opts)
		if err != nil {
			t.Fatalf("NewGitOrigin(%s): %v", tt.opts.URL, err)
		}
		if got := o.String(); got != tt.want {
			t.Errorf("NewGitOrigin(%q).String() = %q, want %q", tt.opts.URL, got, tt.want)
		}
		// Errors name the URL as given and may echo the password.
		msg := "fetch " + tt.opts.URL + " failed"
		if tt.opts.Password != "" {
			msg += " for password " + tt.opts.Password
		}
		got := o.(*gitOrigin).redact(errors.New(msg)).Error()
		if strings.Contains(got, "s3cr3t") || (tt.opts.Password != "" && strings.Contains(got, tt.opts.Password)) {
			t.Errorf("redact(%q) = %q", msg, got)
		}
	}
	for _, bad := range []string{"", "ftp://example.com/r.git", "/no/such/dir"} {
		if _, err := NewGitOrigin(GitOptions{URL: bad}); err == nil {
			t.Errorf("NewGitOrigin(%q) = nil error", bad)
		}
	}
}

// testSSHKey returns a throwaway ed25519 key in OpenSSH PEM form.
func testSSHKey(t *testing.T) []byte {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "test")
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(block)
}
