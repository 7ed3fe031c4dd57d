package source

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"io/fs"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"certops/fixtures"
)

// TestOpenRevision reads a working copy at a commit and in its working tree.
func TestOpenRevision(t *testing.T) {
	repo := fixtures.NewGitRepo(t)
	c1 := repo.Commit(t, "one", map[string]string{"a.yaml": "one\n"})
	repo.Commit(t, "two", map[string]string{"a.yaml": "two\n", "b/c.yaml": "c\n"})
	fixtures.WriteFilesTo(t, repo.Work, map[string]string{"a.yaml": "dirty\n"})
	tests := []struct {
		rev, file, want string
	}{
		{c1, "a.yaml", "one\n"},
		{"HEAD", "a.yaml", "two\n"},
		{"main", "b/c.yaml", "c\n"},
		{"", "a.yaml", "dirty\n"},
	}
	for _, tt := range tests {
		fsys, err := OpenRevision(t.Context(), repo.Work, tt.rev)
		if err != nil {
			t.Fatalf("OpenRevision(%q): %v", tt.rev, err)
		}
		b, err := fs.ReadFile(fsys, tt.file)
		if err != nil || string(b) != tt.want {
			t.Errorf("OpenRevision(%q) %s = %q, %v; want %q", tt.rev, tt.file, b, err, tt.want)
		}
	}
	if _, err := OpenRevision(t.Context(), repo.Work, "no-such-rev"); err == nil {
		t.Error("OpenRevision(no-such-rev) = nil error")
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
		o, err := NewGit(tt.opts)
		if err != nil {
			t.Fatalf("NewGit(%s): %v", tt.opts.URL, err)
		}
		if got := o.String(); got != tt.want {
			t.Errorf("NewGit(%q).String() = %q, want %q", tt.opts.URL, got, tt.want)
		}
		// Errors name the URL as given and may echo the password.
		msg := "fetch " + tt.opts.URL + " failed"
		if tt.opts.Password != "" {
			msg += " for password " + tt.opts.Password
		}
		got := o.redact(errors.New(msg)).Error()
		if strings.Contains(got, "s3cr3t") || (tt.opts.Password != "" && strings.Contains(got, tt.opts.Password)) {
			t.Errorf("redact(%q) = %q", msg, got)
		}
	}
	for _, bad := range []string{"", "ftp://example.com/r.git", "/no/such/dir"} {
		if _, err := NewGit(GitOptions{URL: bad}); err == nil {
			t.Errorf("NewGit(%q) = nil error", bad)
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
