package e2e

import (
	"strings"
	"testing"
)

// TestHostileFileNames is issue 16 item 7: a file name holding a newline
// or an ANSI escape is printed escaped (as %q would) by validate's text
// output, so it cannot forge an output line or recolour a terminal.
func TestHostileFileNames(t *testing.T) {
	dir := t.TempDir()
	evil := "evil\n::error file=ok.yaml::forged\x1b[31m.yaml"
	writeFile(t, dir, evil, []byte("name: [unclosed\n"))
	writeFile(t, dir, "notes\x1b[2J.txt", []byte("stray\n"))
	r := certops(t, dir, nil, "validate", "-v", ".")
	if r.code != 1 {
		t.Fatalf("validate: exit %d, want 1 (the file is invalid)\n%s%s", r.code, r.stdout, r.stderr)
	}
	out := r.stdout + r.stderr
	if strings.ContainsRune(out, '\x1b') {
		t.Errorf("validate printed a raw escape character:\n%q", out)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "::error file=ok.yaml::forged") {
			t.Errorf("a file name forged an output line: %q", line)
		}
	}
	if !strings.Contains(out, `"evil\n::error file=ok.yaml::forged\x1b[31m.yaml"`) {
		t.Errorf("validate output does not name the file escaped:\n%s", out)
	}
}
