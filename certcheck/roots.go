package certcheck

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"strings"

	// The Mozilla root set, used by crypto/x509 only when the machine has
	// no system roots (x509.SetFallbackRoots semantics): a distroless
	// container still knows the public roots, and a machine with its own
	// roots keeps them.
	_ "golang.org/x/crypto/x509roots/fallback"
)

// SystemRoots returns a copy of the system's root pool, which is the
// embedded Mozilla set when the machine has none. It returns an empty pool
// when the system pool cannot be read.
func SystemRoots() *x509.CertPool {
	p, err := x509.SystemCertPool()
	if err != nil || p == nil {
		return x509.NewCertPool()
	}
	return p
}

// poolSubjects returns the raw subjects of the certificates in p, or nil
// where crypto/x509 verifies a system pool with the platform's verifier
// (Windows, macOS, iOS), whose roots a pool does not list.
func poolSubjects(p *x509.CertPool) map[string]bool {
	switch runtime.GOOS {
	case "windows", "darwin", "ios":
		return nil
	}
	out := map[string]bool{}
	//lint:ignore SA1019 on the other systems a system pool lists its roots
	for _, s := range p.Subjects() {
		out[string(s)] = true
	}
	return out
}

// ParseRoots reads a PEM bundle of root certificates (a --roots file or a
// repository's *.roots.pem). Every block must be a CA certificate; errors
// name the block by its position, never its content.
func ParseRoots(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for n := 1; ; n++ {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("PEM block %d is a %q block, want CERTIFICATE", n, redactType(block.Type))
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d does not parse: %w", n, err)
		}
		if !c.BasicConstraintsValid || !c.IsCA {
			return nil, fmt.Errorf("certificate %d (%s) is not a CA certificate", n, name(c))
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM certificate found (want one or more root CA certificates)")
	}
	return out, nil
}

// redactType keeps a PEM type for a message; a private key's type is
// named as such (the block itself is never shown).
func redactType(t string) string {
	if len(t) > 40 {
		return t[:40] + "..."
	}
	return t
}

// Pool returns a pool holding certs.
func Pool(certs ...[]*x509.Certificate) *x509.CertPool {
	p := x509.NewCertPool()
	for _, l := range certs {
		for _, c := range l {
			p.AddCert(c)
		}
	}
	return p
}

// PinnedSuffix ends the name of a repository file that pins private
// roots; such files are reviewed like the policy.
const PinnedSuffix = ".roots.pem"

// IsPinned reports whether the slash-separated path p names a pinned
// roots file (a dot-file or a file below a dot-folder does not count).
func IsPinned(p string) bool {
	for _, seg := range strings.Split(p, "/") {
		if strings.HasPrefix(seg, ".") && seg != "." && seg != ".." {
			return false
		}
	}
	return strings.HasSuffix(p, PinnedSuffix)
}

// PinnedRoots reads every *.roots.pem file below root in fsys (dot-files
// and dot-folders skipped). An error names the file.
func PinnedRoots(fsys fs.FS, root string) ([]*x509.Certificate, error) {
	if root == "" {
		root = "."
	}
	var out []*x509.Certificate
	err := fs.WalkDir(fsys, root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != root && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() || !strings.HasSuffix(p, PinnedSuffix) {
			return nil
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		certs, err := ParseRoots(b)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		out = append(out, certs...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pinned roots: %w", err)
	}
	return out, nil
}

// ReadRootFiles reads the PEM bundles named by --roots. An error names the
// file.
func ReadRootFiles(paths []string) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("--roots: %w", err)
		}
		certs, err := ParseRoots(b)
		if err != nil {
			return nil, fmt.Errorf("--roots %s: %w", p, err)
		}
		out = append(out, certs...)
	}
	return out, nil
}
