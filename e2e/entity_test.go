package e2e

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// entity is an SSL entity file as a user writes it (DESIGN.md 2).
type entity struct {
	name     string
	snis     []string
	chains   []*testLeaf // the first is cert/key, the rest certs/keys
	clientCA []byte      // PEM; enables mTLS
	extra    string      // raw YAML lines appended as is (labels, ssl_protocols, ...)
}

// yaml renders the entity as a YAML document.
func (e entity) yaml() []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "name: %s\n", e.name)
	if len(e.snis) > 0 {
		b.WriteString("snis:\n")
		for _, s := range e.snis {
			fmt.Fprintf(&b, "  - %q\n", s)
		}
	}
	if len(e.chains) > 0 {
		writeBlock(&b, "cert: |", "  ", e.chains[0].certPEM)
		writeBlock(&b, "key: |", "  ", e.chains[0].keyPEM)
	}
	if len(e.chains) > 1 {
		b.WriteString("certs:\n")
		for _, c := range e.chains[1:] {
			writeBlock(&b, "  - |", "    ", c.certPEM)
		}
		b.WriteString("keys:\n")
		for _, c := range e.chains[1:] {
			writeBlock(&b, "  - |", "    ", c.keyPEM)
		}
	}
	if e.clientCA != nil {
		b.WriteString("client:\n")
		writeBlock(&b, "  ca: |", "    ", e.clientCA)
	}
	b.WriteString(e.extra)
	return b.Bytes()
}

func writeBlock(b *bytes.Buffer, head, indent string, body []byte) {
	b.WriteString(head + "\n")
	for _, line := range strings.Split(strings.TrimRight(string(body), "\n"), "\n") {
		b.WriteString(indent + line + "\n")
	}
}

// writeFile writes data to dir/name, creating folders.
func writeFile(tb testing.TB, dir, name string, data []byte) {
	tb.Helper()
	p := filepath.Join(dir, filepath.FromSlash(name))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		tb.Fatal(err)
	}
}

// removeFile removes dir/name.
func removeFile(tb testing.TB, dir, name string) {
	tb.Helper()
	if err := os.Remove(filepath.Join(dir, filepath.FromSlash(name))); err != nil {
		tb.Fatal(err)
	}
}
