//go:build unix

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestValidateNamedPipe is issue 16 item 6 through the binary: a named pipe
// named like an entity file is reported from its type and never opened, so
// `certops validate` exits at once instead of waiting for a writer.
func TestValidateNamedPipe(t *testing.T) {
	requireBinary(t)
	ca := newCA(t, "fifo CA")
	dir := t.TempDir()
	shop := entity{name: "shop", snis: []string{"shop.test"}, chains: []*testLeaf{ca.issue(t, algECDSA, "shop.test", []string{"shop.test"})}}.yaml()
	if err := os.WriteFile(filepath.Join(dir, "shop.yaml"), shop, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "pipe.yaml"), 0o644); err != nil {
		t.Skipf("cannot make a named pipe: %v", err)
	}
	// certops fails the test if the command does not end within its
	// timeout: a blocking open of the pipe would.
	r := certops(t, dir, nil, "validate", ".")
	if r.code != 1 || !strings.Contains(r.stdout, "pipe.yaml: error: not a regular file (a named pipe)") {
		t.Errorf("validate = exit %d\n%s%s\nwant exit 1 and pipe.yaml refused as a named pipe", r.code, r.stdout, r.stderr)
	}
}
