package schema_test

import (
	"bytes"
	"flag"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"certops/schema"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/tools/txtar"
)

var update = flag.Bool("update", false, "rewrite the want section of testdata/{cases,compat}/*.txtar")

// TestGolden validates each txtar archive in testdata/cases and
// testdata/compat as a repository (every file but "want") and compares the
// text report with its "want" section. Archives named good-* must be valid, bad-* invalid,
// warn-* valid with warnings. {{pem NAME}} on a line of its own is replaced
// by the PEM blocks of testdata/pki/NAME, indented like the placeholder;
// {{json NAME}} by the same as a JSON string. No report may contain a line
// of any test key.
func TestGolden(t *testing.T) {
	paths, err := filepath.Glob(filepath.Join("testdata", "cases", "*.txtar"))
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) < 30 {
		t.Errorf("%d golden cases, want at least 30", len(paths))
	}
	// The compatibility corpus: the shapes of real APISIX and ADC
	// repositories, from certificates made with openssl (issue 18).
	compat, err := filepath.Glob(filepath.Join("testdata", "compat", "*.txtar"))
	if err != nil {
		t.Fatal(err)
	}
	paths = append(paths, compat...)
	keyLines := testKeyLines(t)
	for _, p := range paths {
		name := filepath.Base(filepath.Dir(p)) + "/" + strings.TrimSuffix(filepath.Base(p), ".txtar")
		t.Run(name, func(t *testing.T) {
			ar, err := txtar.ParseFile(p)
			if err != nil {
				t.Fatal(err)
			}
			fsys := fstest.MapFS{}
			var want []byte
			wantIdx := -1
			for i, f := range ar.Files {
				if f.Name == "want" {
					want, wantIdx = f.Data, i
					continue
				}
				fsys[f.Name] = &fstest.MapFile{Data: expand(t, f.Data), Mode: 0o644}
			}
			res, err := schema.Load(fsys, schema.Options{Now: func() time.Time { return testNow }})
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			var got bytes.Buffer
			if err := schema.WriteReport(&got, res, schema.FormatText, schema.ReportOptions{Verbose: true}); err != nil {
				t.Fatal(err)
			}
			for _, l := range keyLines {
				if bytes.Contains(got.Bytes(), []byte(l)) {
					t.Errorf("report contains a line of a test private key")
				}
			}
			switch base := path.Base(name); {
			case strings.HasPrefix(base, "good-"):
				if res.Failed(true) {
					t.Errorf("good case fails validation (strict)")
				}
			case strings.HasPrefix(base, "warn-"):
				if res.Failed(false) || !res.Failed(true) {
					t.Errorf("warn case: Failed(false) = %v, Failed(true) = %v; want false, true", res.Failed(false), res.Failed(true))
				}
			case strings.HasPrefix(base, "bad-"):
				if !res.Failed(false) {
					t.Errorf("bad case passes validation")
				}
			default:
				t.Errorf("case name must start with good-, warn- or bad-")
			}
			if *update {
				if wantIdx < 0 {
					ar.Files = append(ar.Files, txtar.File{Name: "want"})
					wantIdx = len(ar.Files) - 1
				}
				ar.Files[wantIdx].Data = got.Bytes()
				if err := os.WriteFile(p, txtar.Format(ar), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if diff := cmp.Diff(string(want), got.String()); diff != "" {
				t.Errorf("report mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

// expand and pemOf are the helpers the internal tests export
// (cases_export_test.go).
var (
	expand = schema.ExpandCase
	pemOf  = schema.CasePEM
)

// testKeyLines returns the base64 lines of every test private key.
func testKeyLines(tb testing.TB) []string {
	tb.Helper()
	paths, _ := filepath.Glob(filepath.Join("testdata", "pki", "*.key"))
	var lines []string
	for _, p := range paths {
		for _, l := range strings.Split(string(pemOf(tb, filepath.Base(p))), "\n") {
			if len(l) >= 16 && !strings.HasPrefix(l, "-----") {
				lines = append(lines, l)
			}
		}
	}
	if len(lines) == 0 {
		tb.Fatal("no test keys found in testdata/pki")
	}
	return lines
}
