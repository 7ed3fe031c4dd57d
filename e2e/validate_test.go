package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// lineOf returns the 1-based line of the first line of doc that starts
// with prefix (after indentation), or 0.
func lineOf(doc []byte, prefix string) int {
	for i, line := range strings.Split(string(doc), "\n") {
		if strings.HasPrefix(strings.TrimLeft(line, " "), prefix) {
			return i + 1
		}
	}
	return 0
}

// validateReport is the JSON report of `certops validate --format json`.
type validateReport struct {
	Valid    bool         `json:"valid"`
	Entities int          `json:"entities"`
	Files    int          `json:"files"`
	Errors   int          `json:"errors"`
	Warnings int          `json:"warnings"`
	Problems []problemDoc `json:"problems"`
}

// TestValidate runs `certops validate` on real repositories, each with one
// thing wrong (or right), in the three formats, and checks the exit code
// and that the problem is reported at the file, line and field where it
// is.
func TestValidate(t *testing.T) {
	requireBinary(t)
	ca := newCA(t, "validate CA")
	good := func(name, sni string) *testLeaf { return ca.issue(t, algECDSA, name, []string{sni}) }
	shop := good("shop.test", "shop.test")
	other := good("other.test", "other.test")
	// The valid repository's leaves live 90 days, within the public
	// maximum (lifetime_private), and its CA is pinned (untrusted_root).
	days90 := leafOptions{notAfter: time.Now().Add(90 * 24 * time.Hour)}
	rsa := ca.issue(t, algRSA, "api.test", []string{"api.test"}, days90)
	ec := ca.issue(t, algECDSA, "api.test", []string{"api.test"}, days90)
	expired := ca.issue(t, algECDSA, "old.test", []string{"old.test"}, leafOptions{notBefore: time.Now().Add(-48 * time.Hour), notAfter: time.Now().Add(-24 * time.Hour)})
	expiring := ca.issue(t, algECDSA, "soon.test", []string{"soon.test"}, leafOptions{notAfter: time.Now().Add(24 * time.Hour)})
	mismatched := *good("shop.test", "shop.test")
	mismatched.keyPEM = other.keyPEM

	valid := map[string][]byte{
		"shop.yaml":    entity{name: "shop", snis: []string{"shop.test", "*.shop.test"}, chains: []*testLeaf{ca.issue(t, algECDSA, "shop.test", []string{"shop.test", "*.shop.test"}, days90)}}.yaml(),
		"ca.roots.pem": ca.certPEM,
		"api/dual.yaml": entity{name: "api", snis: []string{"api.test"}, chains: []*testLeaf{rsa, ec}, clientCA: ca.certPEM,
			extra: "ssl_protocols: [TLSv1.2, TLSv1.3]\nlabels:\n  team: api\n"}.yaml(),
	}
	tests := []struct {
		name      string
		files     map[string][]byte
		args      []string
		wantCode  int
		wantFile  string // the problem's file; "" for none
		wantField string // the problem's field (the last element of its path)
		wantLine  int
		wantSev   string
		wantMsg   string // a substring of the problem's field and message
	}{
		{name: "valid repository", files: valid, wantCode: 0},
		{
			name:     "key does not match certificate",
			files:    map[string][]byte{"shop.yaml": entity{name: "shop", snis: []string{"shop.test"}, chains: []*testLeaf{&mismatched}}.yaml()},
			wantCode: 1, wantFile: "shop.yaml", wantField: "key", wantSev: "error",
		},
		{
			name:     "SNI not covered by the certificate",
			files:    map[string][]byte{"shop.yaml": entity{name: "shop", snis: []string{"shop.test", "www.shop.test"}, chains: []*testLeaf{shop}}.yaml()},
			wantCode: 1, wantFile: "shop.yaml", wantField: "snis", wantSev: "error",
		},
		{
			name:     "expired certificate",
			files:    map[string][]byte{"old.yaml": entity{name: "old", snis: []string{"old.test"}, chains: []*testLeaf{expired}}.yaml()},
			wantCode: 1, wantFile: "old.yaml", wantField: "cert", wantSev: "error",
		},
		{
			name:     "expiring certificate is a warning",
			files:    map[string][]byte{"soon.yaml": entity{name: "soon", snis: []string{"soon.test"}, chains: []*testLeaf{expiring}}.yaml()},
			wantCode: 0, wantFile: "soon.yaml", wantField: "cert", wantSev: "warning",
		},
		{
			name:     "expiring certificate fails with --strict",
			files:    map[string][]byte{"soon.yaml": entity{name: "soon", snis: []string{"soon.test"}, chains: []*testLeaf{expiring}}.yaml()},
			args:     []string{"--strict"},
			wantCode: 1, wantFile: "soon.yaml", wantField: "cert", wantSev: "warning",
		},
		{
			name: "duplicate SNI across files",
			files: map[string][]byte{
				"a.yaml": entity{name: "a", snis: []string{"shop.test"}, chains: []*testLeaf{shop}}.yaml(),
				"b.yaml": entity{name: "b", snis: []string{"shop.test"}, chains: []*testLeaf{shop}}.yaml(),
			},
			wantCode: 1, wantFile: "b.yaml", wantField: "snis", wantSev: "error", wantMsg: "a.yaml", // names both places
		},
		{
			name:     "unknown field",
			files:    map[string][]byte{"shop.yaml": entity{name: "shop", snis: []string{"shop.test"}, chains: []*testLeaf{shop}, extra: "sni_typo: shop.test\n"}.yaml()},
			wantCode: 1, wantFile: "shop.yaml", wantField: "sni_typo", wantSev: "error",
		},
		{
			name:     "YAML syntax error",
			files:    map[string][]byte{"shop.yaml": []byte("name: shop\nsnis: [shop.test\n")},
			wantCode: 1, wantFile: "shop.yaml", wantSev: "error", wantMsg: "YAML",
		},
		{
			name: "policy in CUE requires a team label",
			files: map[string][]byte{
				"policy.cue": []byte("package certops\n\n#SSL: labels: team: string\n"),
				"shop.yaml":  entity{name: "shop", snis: []string{"shop.test"}, chains: []*testLeaf{shop}, extra: "labels:\n  owner: someone\n"}.yaml(),
			},
			wantCode: 1, wantFile: "shop.yaml", wantSev: "error", wantMsg: "team",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, data := range tt.files {
				writeFile(t, dir, name, data)
			}
			// text
			text := certops(t, dir, nil, append([]string{"validate", "."}, tt.args...)...)
			if text.code != tt.wantCode {
				t.Fatalf("validate %v: exit %d, want %d\n%s%s", tt.args, text.code, tt.wantCode, text.stdout, text.stderr)
			}
			// json
			js := certops(t, dir, nil, append([]string{"validate", ".", "--format", "json"}, tt.args...)...)
			var rep validateReport
			if err := json.Unmarshal([]byte(js.stdout), &rep); err != nil {
				t.Fatalf("validate --format json: %v in %q", err, js.stdout)
			}
			if js.code != tt.wantCode {
				t.Errorf("validate --format json: exit %d, want %d", js.code, tt.wantCode)
			}
			// github
			gh := certops(t, dir, nil, append([]string{"validate", ".", "--format", "github"}, tt.args...)...)
			if gh.code != tt.wantCode {
				t.Errorf("validate --format github: exit %d, want %d", gh.code, tt.wantCode)
			}
			if tt.wantFile == "" {
				if len(rep.Problems) != 0 || !rep.Valid {
					t.Errorf("valid repository: report %+v, want valid and no problems", rep)
				}
				return
			}
			p, ok := findProblem(rep.Problems, tt.wantFile, tt.wantField, tt.wantSev)
			if !ok {
				t.Fatalf("validate --format json: problems %+v, want a %s in %s on field %q", rep.Problems, tt.wantSev, tt.wantFile, tt.wantField)
			}
			if !strings.Contains(p.Field+" "+p.Message, tt.wantMsg) {
				t.Errorf("problem %+v: want %q in its field or message", p, tt.wantMsg)
			}
			// The position is where the field is in the file.
			doc, err := os.ReadFile(filepath.Join(dir, tt.wantFile))
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantField != "" {
				if want := lineOf(doc, tt.wantField+":"); p.Line != want && !inList(doc, tt.wantField, p.Line) {
					t.Errorf("problem %+v: line %d, want %d (the line of %s:) or an element of it", p, p.Line, want, tt.wantField)
				}
			} else if p.Line < 1 {
				t.Errorf("problem %+v: no line", p)
			}
			// A parser's position may have no column: file:line then.
			wantText := fmt.Sprintf("%s:%d:%d: ", p.File, p.Line, p.Column)
			if p.Column == 0 {
				wantText = fmt.Sprintf("%s:%d: ", p.File, p.Line)
			}
			if !strings.Contains(text.stdout, wantText) {
				t.Errorf("validate text output lacks %q:\n%s", wantText, text.stdout)
			}
			kind := "error"
			if p.Severity == "warning" {
				kind = "warning"
			}
			wantGH := fmt.Sprintf("::%s file=%s,line=%d,col=%d::", kind, p.File, p.Line, p.Column)
			if p.Column == 0 {
				wantGH = fmt.Sprintf("::%s file=%s,line=%d::", kind, p.File, p.Line)
			}
			if !strings.Contains(gh.stdout, wantGH) {
				t.Errorf("validate --format github lacks %q:\n%s", wantGH, gh.stdout)
			}
		})
	}

	t.Run("missing directory", func(t *testing.T) {
		r := certops(t, t.TempDir(), nil, "validate", "does-not-exist")
		if r.code != 1 || r.stderr == "" {
			t.Errorf("validate does-not-exist: exit %d, stderr %q; want 1 and an error", r.code, r.stderr)
		}
	})
}

// findProblem returns the first problem in file with severity sev and, if
// field is set, whose field path ends in field.
func findProblem(problems []problemDoc, file, field, sev string) (problemDoc, bool) {
	for _, p := range problems {
		if p.File != file || p.Severity != sev {
			continue
		}
		if field == "" || p.Field == field || fieldEnds(p.Field, field) {
			return p, true
		}
	}
	return problemDoc{}, false
}

var indexRE = regexp.MustCompile(`\[\d+\]$`)

// fieldEnds reports whether path (snis[1], client.ca) names field.
func fieldEnds(path, field string) bool {
	path = indexRE.ReplaceAllString(path, "")
	return path == field || strings.HasSuffix(path, "."+field)
}

// inList reports whether line is an element of the YAML list under field.
func inList(doc []byte, field string, line int) bool {
	start := lineOf(doc, field+":")
	lines := strings.Split(string(doc), "\n")
	if start == 0 || line <= start || line > len(lines) {
		return false
	}
	for i := start; i < line; i++ {
		if !strings.HasPrefix(strings.TrimLeft(lines[i], " "), "- ") {
			return false
		}
	}
	return true
}

// TestValidateHostileInput feeds validate files no user means to write —
// binary noise, a lone carriage return, deep nesting, a YAML alias bomb, a
// huge file — and wants a positioned error and exit 1 for each, never a
// panic or a hang.
func TestValidateHostileInput(t *testing.T) {
	requireBinary(t)
	noise := make([]byte, 4096)
	for i := range noise {
		noise[i] = byte(i*7919 + i>>3)
	}
	bomb := "a: &a [x, x, x, x, x, x, x, x, x]\n"
	for i := range 9 {
		bomb += fmt.Sprintf("%c: &%c [*%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c, *%c]\n", 'b'+i, 'b'+i, 'a'+i, 'a'+i, 'a'+i, 'a'+i, 'a'+i, 'a'+i, 'a'+i, 'a'+i, 'a'+i)
	}
	huge := append([]byte("name: huge\nlabels:\n  x: \""), bytes.Repeat([]byte("x"), 32<<20)...)
	huge = append(huge, "\"\n"...)
	for name, data := range map[string][]byte{
		"noise.yaml":   noise,
		"cr.yaml":      []byte("name: x\rsnis: [\r"),
		"nested.json":  []byte(strings.Repeat("[", 100000)),
		"bomb.yaml":    []byte(bomb),
		"huge.yaml":    huge,
		"nul.yaml":     []byte("name: \x00\x00\n"),
		"not-utf8.yml": []byte("name: \xff\xfe\n"),
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			writeFile(t, dir, name, data)
			r := certops(t, dir, nil, "validate", ".", "--format", "json")
			if strings.Contains(r.stderr, "panic:") || strings.Contains(r.stderr, "goroutine ") {
				t.Fatalf("validate %s panicked:\n%s", name, tail(r.stderr, 20))
			}
			var rep validateReport
			if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || r.code != 1 {
				t.Fatalf("validate %s: exit %d, %v in %q; want exit 1 and a JSON report", name, r.code, err, tail(r.stdout, 5))
			}
			if len(rep.Problems) == 0 || rep.Problems[0].File != name || rep.Problems[0].Message == "" {
				t.Errorf("validate %s: problems %+v; want an error naming the file with a message", name, rep.Problems)
			}
		})
	}
}
