package certcheck

import (
	"crypto/sha256"
	"crypto/x509"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"certops/fixtures"
)

// lintedLeaves lints n new private leaves (and one public one) into the
// process cache and returns them.
func lintedLeaves(t testing.TB, ca *fixtures.CA, n int) []*x509.Certificate {
	t.Helper()
	var out []*x509.Certificate
	for i := range n {
		leaf := ca.Server(t, strings.Repeat("a", i+1)+".example.com").Cert
		if _, err := runLints(leaf, i == 0); err != nil {
			t.Fatal(err)
		}
		out = append(out, leaf)
	}
	return out
}

// cached reports whether the process cache holds leaf's results, and
// whether they are zlint's.
func cached(t testing.TB, leaf *x509.Certificate, public bool) bool {
	t.Helper()
	got, ok := lints.get(lintKey{sum: sha256.Sum256(leaf.Raw), public: public}, time.Now())
	if !ok {
		return false
	}
	want, err := lintLeaf(leaf, public)
	if err != nil || !slices.Equal(got, want) {
		t.Errorf("kept results of %s = %v, want %v (%v)", leaf.Subject.CommonName, got, want, err)
	}
	return true
}

// TestLintStore: what one process linted and saved, the next one reads
// back as zlint gives it, appended to as it lints more; a file of another
// build, or lines that do not parse, are dropped, never misread.
func TestLintStore(t *testing.T) {
	t.Cleanup(lints.reset)
	ca := fixtures.NewRootCA(t, "Store Root")
	path := filepath.Join(t.TempDir(), "data", "zlint-results")

	lints.reset()
	s, err := OpenLintStore(path)
	if err != nil {
		t.Fatal(err)
	}
	leaves := lintedLeaves(t, ca, 3)
	if err := s.Save(); err != nil {
		t.Fatalf("Save() = %v", err)
	}

	// A restart: an empty cache reads the file.
	lints.reset()
	s, err = OpenLintStore(path)
	if err != nil {
		t.Fatal(err)
	}
	for i, leaf := range leaves {
		if !cached(t, leaf, i == 0) {
			t.Errorf("after a restart, leaf %d is not cached", i)
		}
	}
	if s.rewrite {
		t.Errorf("a file of this build is to be rewritten; want appended to")
	}
	more := lintedLeaves(t, fixtures.NewRootCA(t, "Store Root 2"), 2)
	before, _ := os.ReadFile(path)
	if err := s.Save(); err != nil {
		t.Fatalf("Save() = %v", err)
	}
	after, _ := os.ReadFile(path)
	if !strings.HasPrefix(string(after), string(before)) || strings.Count(string(after), "\n") != strings.Count(string(before), "\n")+2 {
		t.Errorf("Save() of two more leaves did not append two lines:\n%s\nthen\n%s", before, after)
	}
	if err := s.Save(); err != nil {
		t.Fatalf("Save() = %v", err)
	}
	if again, _ := os.ReadFile(path); string(again) != string(after) {
		t.Errorf("Save() with nothing new changed the file")
	}
	// What a Save wrote is not kept in the cache's order.
	lints.mu.Lock()
	kept := len(lints.order)
	lints.mu.Unlock()
	if kept != 0 {
		t.Errorf("after Save(), the cache keeps %d keys in its order, want 0", kept)
	}
	// A second store of the same process, whose keys the first one's Save
	// trimmed, writes its file anew with every result.
	path2 := filepath.Join(t.TempDir(), "zlint-results")
	s2, err := OpenLintStore(path2)
	if err != nil {
		t.Fatal(err)
	}
	s2.rewrite = false // as if its file had been read
	lintedLeaves(t, fixtures.NewRootCA(t, "Store Root 3"), 1)
	if err := s.Save(); err != nil { // trims the third root's leaf
		t.Fatal(err)
	}
	if err := s2.Save(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path2); strings.Count(string(b), "\n") != 1+len(leaves)+len(more)+1 {
		t.Errorf("the second store's file has %d lines, want the header and %d results:\n%s", strings.Count(string(b), "\n"), len(leaves)+len(more)+1, b)
	}

	// A crash in the middle of an append: the partial line is skipped.
	if err := os.WriteFile(path, after[:len(after)-20], 0o600); err != nil {
		t.Fatal(err)
	}
	lints.reset()
	if _, err := OpenLintStore(path); err != nil {
		t.Fatal(err)
	}
	if cached(t, more[1], false) {
		t.Errorf("the truncated line was read")
	}
	if !cached(t, more[0], true) || !cached(t, leaves[0], true) {
		t.Errorf("the whole lines were not read:\n%s", after)
	}
	if b, _ := os.ReadFile(path); strings.Contains(string(b), "PRIVATE KEY") || strings.Contains(string(b), "CERTIFICATE") {
		t.Errorf("the file holds PEM:\n%s", b)
	}

	// Another build's file (zlint or Go upgraded) is not read, and is
	// replaced at the next Save.
	head, _ := lintStoreHeader()
	other := strings.Replace(string(after), head, lintStoreMagic+" 1 00000000000000000000000000000000", 1)
	if err := os.WriteFile(path, []byte(other), 0o600); err != nil {
		t.Fatal(err)
	}
	lints.reset()
	s, err = OpenLintStore(path)
	if err != nil {
		t.Fatal(err)
	}
	if cached(t, leaves[1], false) {
		t.Errorf("a file of another build was read")
	}
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); !strings.HasPrefix(string(b), head+"\n") || strings.Count(string(b), "\n") != 1 {
		t.Errorf("after Save(), the file of another build is\n%s\nwant the header alone", b)
	}
}

// TestParseLintLines: a line is read only when every field is sound, and
// a public leaf's line only on its day.
func TestParseLintLines(t *testing.T) {
	sum := strings.Repeat("ab", sha256.Size)
	const today = 20423
	tests := []struct {
		name string
		line string
		want int
	}{
		{"private", sum + ` r 0 [{"n":"w_x","d":"D","s":"warn"}]`, 1},
		{"private, no results", sum + " r 0 []", 1},
		{"public today", sum + " p 20423 []", 1},
		{"public yesterday", sum + " p 20422 []", 0},
		{"private with a day", sum + " r 20423 []", 0},
		{"unknown set", sum + " q 0 []", 0},
		{"short sum", sum[2:] + " r 0 []", 0},
		{"not hex", strings.Repeat("zz", sha256.Size) + " r 0 []", 0},
		{"truncated JSON", sum + ` r 0 [{"n":"w_`, 0},
		{"null", sum + " r 0 null", 0},
		{"no results field", sum + " r 0", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, lines, err := parseLintLines(strings.NewReader(tt.line+"\n"), today)
			if len(got) != tt.want || lines != 1 || err != nil {
				t.Errorf("parseLintLines(%q) = %d entries, %d lines; want %d, 1", tt.line, len(got), lines, tt.want)
			}
		})
	}
	got, _, _ := parseLintLines(strings.NewReader(sum+` r 0 [{"n":"w_x","d":"D","s":"warn","x":"why"}]`+"\n"), today)
	var warn lintStatus
	if err := warn.UnmarshalJSON([]byte(`"warn"`)); err != nil {
		t.Fatal(err)
	}
	want := []lintResult{{name: "w_x", description: "D", status: warn, details: "why"}}
	if len(got) != 1 || !slices.Equal(got[0].entry.res, want) {
		t.Errorf("parseLintLines() = %+v, want results %+v", got, want)
	}
}

// TestLintStoreFindings: after a restart that reads the kept results, the
// findings are those of a first start, zlint's errors included (a kept
// error still refuses the revision).
func TestLintStoreFindings(t *testing.T) {
	t.Cleanup(lints.reset)
	p := newPKI(t)
	leaf := p.inter.Server(t, "kept.example.com")
	chain := []Chain{{Field: "cert", Certs: certs(leaf.Cert, p.inter.Cert)}}
	checkers := map[string]*Checker{
		"public":  New(Options{Public: fixtures.Pool(p.root)}),
		"private": New(Options{Public: x509.NewCertPool(), Private: []*x509.Certificate{p.root.Cert}, Policy: Policy{LintPrivateWarning: SeverityWarning}}),
	}
	path := filepath.Join(t.TempDir(), "zlint-results")
	lints.reset()
	s, err := OpenLintStore(path)
	if err != nil {
		t.Fatal(err)
	}
	first := map[string][]Finding{}
	for name, c := range checkers {
		first[name] = c.Entity(Entity{Name: "shop", Chains: chain})
	}
	if !slices.ContainsFunc(first["public"], func(f Finding) bool { return f.Check == LintError }) {
		t.Fatalf("the public leaf has no zlint error to keep: %v", first["public"])
	}
	if err := s.Save(); err != nil {
		t.Fatal(err)
	}
	lints.reset()
	if _, err := OpenLintStore(path); err != nil {
		t.Fatal(err)
	}
	for name, c := range checkers {
		if !cached(t, leaf.Cert, name == "public") {
			t.Errorf("%s: the kept results were not read", name)
		}
		if got := c.Entity(Entity{Name: "shop", Chains: chain}); !slices.Equal(got, first[name]) {
			t.Errorf("%s: Entity() after a restart = %v\nwant %v", name, got, first[name])
		}
	}
}

// TestLintCleanLeaf: a leaf zlint finds nothing in (one with a subject
// key identifier, as openssl and public CAs issue them) is cached, read
// back, saved and loaded again like any other, including when it is the
// first leaf the process lints. Before, its empty result read a table
// that only a leaf with findings made: validate panicked, and the daemon's
// Save held the cache's lock forever.
func TestLintCleanLeaf(t *testing.T) {
	t.Cleanup(lints.reset)
	p := newPKI(t)
	leaf := p.inter.Leaf(t, fixtures.LeafOptions{DNSNames: []string{"clean.example.com"}, KeyID: true})
	chain := []Chain{{Field: "cert", Certs: certs(leaf.Cert, p.inter.Cert)}}
	c := New(Options{Public: x509.NewCertPool(), Private: []*x509.Certificate{p.root.Cert}})
	path := filepath.Join(t.TempDir(), "zlint-results")

	lints.reset()
	s, err := OpenLintStore(path)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := lintLeaf(leaf.Cert, false); err != nil || len(res) != 0 {
		t.Fatalf("zlint on a leaf with a key identifier = %v, %v; want no finding", res, err)
	}
	for range 2 { // linted, then from the cache
		if f := c.Entity(Entity{Name: "clean", Chains: chain}); len(f) != 0 {
			t.Fatalf("findings of a clean leaf = %v, want none", f)
		}
	}
	if !cached(t, leaf.Cert, false) {
		t.Fatal("the clean leaf's result is not cached")
	}
	done := make(chan error, 1)
	go func() { done <- s.Save() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Save did not return")
	}
	lints.reset()
	if _, err := OpenLintStore(path); err != nil {
		t.Fatal(err)
	}
	if !cached(t, leaf.Cert, false) {
		t.Error("the clean leaf's result was not read back from the store")
	}
}
