package reconciler_test

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"certops/fixtures"
	"certops/gateway"
	"certops/reconciler"
	"certops/schema"
	"certops/source"
)

// TestLintResultsKept: a daemon with a data dir and the hygiene checks
// keeps zlint's results of the leaves it served there (the leaf's SHA-256,
// never its PEM or key), for the next start to read; the embedded example
// (no source, issued anew at each start) leaves the data dir empty.
func TestLintResultsKept(t *testing.T) {
	root := fixtures.NewRootCA(t, "kept lints root")
	leaf := root.Server(t, "kept.example.com")
	files := fstest.MapFS{"shop.yaml": {Data: []byte(fixtures.EntityYAML(fixtures.Entity{Name: "shop", SNIs: []string{"kept.example.com"}, Chains: []*fixtures.Leaf{leaf}}))}}
	sum := sha256.Sum256(leaf.Cert.Raw)
	tests := []struct {
		name string
		src  source.Source
		kept bool
	}{
		{"a source", source.NewFS(files, "test"), true},
		{"the embedded file system", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			r := reconciler.New(reconciler.Options{Source: tt.src, FS: files, Gateway: gateway.New(gateway.Options{}), DataDir: dir,
				Hygiene: &schema.Hygiene{PublicRoots: x509.NewCertPool()}})
			ctx, cancel := context.WithCancel(t.Context())
			done := make(chan error, 1)
			go func() { done <- r.Run(ctx) }()
			for deadline := time.Now().Add(30 * time.Second); !r.Ready(); time.Sleep(10 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("the reconciler did not apply the revision")
				}
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("Run() = %v", err)
			}
			b, err := os.ReadFile(filepath.Join(dir, "zlint-results"))
			if !tt.kept {
				if entries, _ := os.ReadDir(dir); len(entries) > 0 {
					t.Errorf("data dir holds %d entries, want none", len(entries))
				}
				return
			}
			if err != nil {
				t.Fatalf("zlint results not kept: %v", err)
			}
			if !strings.Contains(string(b), hex.EncodeToString(sum[:])+" r 0 ") {
				t.Errorf("zlint-results does not name the leaf:\n%s", b)
			}
			if strings.Contains(string(b), "BEGIN") {
				t.Errorf("zlint-results holds PEM:\n%s", b)
			}
		})
	}
}
