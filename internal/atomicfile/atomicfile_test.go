package atomicfile_test

import (
	"os"
	"path/filepath"
	"testing"

	"certops/internal/atomicfile"
)

// TestWrite: the file holds the new content, replaces the old one, and no
// temporary file is left beside it, whichever way it was written.
func TestWrite(t *testing.T) {
	for _, tc := range []struct {
		name  string
		write func(string, []byte) error
	}{
		{"Write", atomicfile.Write},
		{"WriteSynced", atomicfile.WriteSynced},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "applied.json")
			for _, content := range []string{"old\n", "new\n"} {
				if err := tc.write(path, []byte(content)); err != nil {
					t.Fatalf("%s(%q) = %v, want nil", tc.name, content, err)
				}
				if got, err := os.ReadFile(path); err != nil || string(got) != content {
					t.Fatalf("after %s(%q): file holds %q, %v", tc.name, content, got, err)
				}
			}
			if entries, _ := os.ReadDir(dir); len(entries) != 1 {
				t.Errorf("folder holds %d entries, want only the file (no temporary left)", len(entries))
			}
		})
	}
}

// TestWriteFails: a folder that does not exist is an error, and nothing
// is created.
func TestWriteFails(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "missing", "applied.json")
	if err := atomicfile.Write(path, []byte("x")); err == nil {
		t.Fatalf("Write(%q) = nil, want an error", path)
	}
	// A rename over a folder fails after the temporary file was written:
	// it is removed.
	target := filepath.Join(dir, "a-folder")
	if err := os.Mkdir(target, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(target, "inside"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := atomicfile.Write(target, []byte("x")); err == nil {
		t.Fatalf("Write over a non-empty folder = nil, want an error")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("folder holds %d entries, want only a-folder (the temporary removed)", len(entries))
	}
}
