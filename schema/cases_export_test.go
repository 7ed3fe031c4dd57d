package schema

import (
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// casePlaceholder is a golden case's placeholder for a PEM file of
// testdata/pki: {{pem NAME}} alone on a line, or {{json NAME}} in JSON.
var casePlaceholder = regexp.MustCompile(`(?m)^([ \t]*)\{\{pem ([a-z0-9.-]+)\}\}[ \t]*$|\{\{json ([a-z0-9.-]+)\}\}`)

// ExpandCase replaces the placeholders of a golden case's file: by the PEM
// blocks of testdata/pki/NAME, indented like the placeholder, or by them
// as a JSON string. The internal tests and package schema_test's (the
// golden cases, the fuzz corpus) share it.
func ExpandCase(tb testing.TB, src []byte) []byte {
	tb.Helper()
	return casePlaceholder.ReplaceAllFunc(src, func(m []byte) []byte {
		sub := casePlaceholder.FindSubmatch(m)
		if len(sub[3]) > 0 {
			b, _ := json.Marshal(string(CasePEM(tb, string(sub[3]))))
			return b
		}
		lines := strings.Split(strings.TrimRight(string(CasePEM(tb, string(sub[2]))), "\n"), "\n")
		for i := range lines {
			lines[i] = string(sub[1]) + lines[i]
		}
		return []byte(strings.Join(lines, "\n"))
	})
}

// CasePEM returns the PEM blocks of testdata/pki/name, without its header.
func CasePEM(tb testing.TB, name string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "pki", name))
	if err != nil {
		tb.Fatalf("test PKI: %v", err)
	}
	var out []byte
	for {
		var block *pem.Block
		if block, b = pem.Decode(b); block == nil {
			return out
		}
		out = append(out, pem.EncodeToMemory(block)...)
	}
}
