package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"certops/fixtures"
)

func TestParseShare(t *testing.T) {
	tests := []struct {
		in      string
		want    float64
		wantErr bool
	}{
		{"50%", 0.5, false},
		{"0.25", 0.25, false},
		{"100%", 1, false},
		{"0", 0, true},
		{"150%", 0, true},
		{"half", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseShare(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseShare(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestNewOrigin(t *testing.T) {
	plain := t.TempDir()
	repo := fixtures.NewGitRepo(t)
	repo.Commit(t, "one", map[string]string{"a.yaml": "x: 1\n"})
	tests := []struct {
		name, source string
		want         string // origin.String()
		kind         string // the origin's type
	}{
		{"plain folder", plain, plain, "*source.Dir"},
		{"working copy", repo.Work, repo.Work, "*source.Git"},
		{"file URL", repo.FileURL(), repo.FileURL(), "*source.Git"},
		{"bare repository", repo.Bare(), repo.Bare(), "*source.Git"},
		{"https with password", "https://bot:hunter2@git.example.com/r.git", "https://bot:xxxxx@git.example.com/r.git", "*source.Git"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, _, err := newSource(runFlags{source: tt.source, dataDir: t.TempDir()}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if o.String() != tt.want || fmt.Sprintf("%T", o) != tt.kind {
				t.Errorf("origin = %T %q, want %s %q", o, o.String(), tt.kind, tt.want)
			}
		})
	}
	t.Run("ssh without a key", func(t *testing.T) {
		_, _, err := newSource(runFlags{source: "git@git.example.com:org/repo.git"}, nil)
		if err == nil || !strings.Contains(err.Error(), "--ssh-key") {
			t.Errorf("newSource(ssh without key) = %v, want an error naming --ssh-key", err)
		}
	})
}

func TestRunFlagErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"max-delete flag", []string{"--max-delete", "200%"}, nil, "--max-delete"},
		{"max-delete variable", nil, map[string]string{"CERTOPS_MAX_DELETE": "lots"}, "--max-delete"},
		{"interval variable", nil, map[string]string{"CERTOPS_INTERVAL": "soon"}, "CERTOPS_INTERVAL"},
		{"upstream", []string{"--upstream", "ftp://x"}, nil, "--upstream"},
		{"missing source", []string{"--source", filepath.Join(os.TempDir(), "certops-no-such-dir", "x")}, nil, "git"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			var stderr bytes.Buffer
			args := append([]string{"run", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0", "--data-dir", t.TempDir()}, tt.args...)
			code := execute(t.Context(), args, &bytes.Buffer{}, &stderr)
			if code != 1 || !strings.Contains(stderr.String(), tt.want) {
				t.Errorf("run %v = exit %d, stderr %q; want exit 1 naming %s", tt.args, code, stderr.String(), tt.want)
			}
		})
	}
}
