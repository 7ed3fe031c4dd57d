package schema_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"certops/schema"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/tools/txtar"
)

// builtinCorpus returns the entity files of the golden cases, the
// compatibility corpus and variants of them that validBuiltin must judge
// like CUE: fields dropped, emptied, retyped or made bytes.
func builtinCorpus(tb testing.TB) map[string][]byte {
	tb.Helper()
	var paths []string
	for _, dir := range []string{"cases", "compat"} {
		p, err := filepath.Glob(filepath.Join("testdata", dir, "*.txtar"))
		if err != nil {
			tb.Fatal(err)
		}
		paths = append(paths, p...)
	}
	files := map[string][]byte{}
	for _, p := range paths {
		ar, err := txtar.ParseFile(p)
		if err != nil {
			tb.Fatal(err)
		}
		for _, f := range ar.Files {
			if f.Name == "want" || strings.HasSuffix(f.Name, ".cue") || strings.HasSuffix(f.Name, ".pem") {
				continue
			}
			src := expand(tb, f.Data)
			name := filepath.Base(p) + "/" + f.Name
			files[name] = src
			if strings.HasSuffix(f.Name, ".json") {
				continue
			}
			for i, v := range builtinVariants(string(src)) {
				files[fmt.Sprintf("%s~%d%s", name, i, filepath.Ext(f.Name))] = []byte(v)
			}
		}
	}
	return files
}

// builtinVariants rewrites lines of a YAML entity: each one a way of being
// invalid under the built-in schema, or valid in a less usual form.
func builtinVariants(src string) []string {
	subst := [][2]string{
		{"type: server", "type: client"},
		{"type: server", "type: other"},
		{"type: server", `type: ""`},
		{"name: ", "name: UPPER-"},
		{"name: ", "name: bad name "},
		{"name: ", "name: !!binary "},
		{"name: ", "#name: "},
		{"name: ", "name: 12\nx: "},
		{"snis:", "snis: []\nz:"},
		{"snis:", "snis: null\nz:"},
		{"snis:", "_snis:"},
		{"  - ", `  - ""` + "\n  - "},
		{"  - ", "  - 7\n  - "},
		{"cert: |", `cert: ""` + "\nz: |"},
		{"cert: |", "cert: !!binary |"},
		{"key: |", "key: null\nz: |"},
		{"key: |", "key: |"},
		{"ssl_protocols:", "ssl_protocols: [TLSv1.1]\nz:"},
		{"ssl_protocols:", "ssl_protocols: [TLSv1.3]\nz:"},
		{"labels:", "labels: {a: 1}\nz:"},
		{"labels:", "labels: {_a: b, '#c': d}\nz:"},
		{"labels:", "labels: {a: b}\nz:"},
		{"client:", "client: {}\nz:"},
		{"client:", "client: {ca: x, depth: -1}\nz:"},
		{"client:", "client: {ca: x, depth: 2}\nz:"},
		{"client:", "client: {ca: \"\"}\nz:"},
		{"depth: ", "depth: 1.5\n  z: "},
		{"desc: ", "desc: 3\nz: "},
		{"certs:", "certs: []\nz:"},
		{"certs:", `certs: [""]` + "\nz:"},
	}
	var out []string
	for _, s := range subst {
		if strings.Contains(src, s[0]) {
			out = append(out, strings.Replace(src, s[0], s[1], 1))
		}
	}
	// Drop each top-level field once.
	lines := strings.Split(src, "\n")
	for i, l := range lines {
		if l == "" || l[0] == ' ' || l[0] == '-' || l[0] == '#' || !strings.Contains(l, ":") {
			continue
		}
		end := i + 1
		for end < len(lines) && strings.HasPrefix(lines[end], " ") {
			end++
		}
		out = append(out, strings.Join(append(append([]string{}, lines[:i]...), lines[end:]...), "\n"))
	}
	return out
}

// sameValidation validates src with and without validBuiltin and reports
// the difference.
func sameValidation(tb testing.TB, name string, src []byte) {
	tb.Helper()
	opts := schema.Options{Now: func() time.Time { return testNow }}
	validate := func(on bool) *schema.FileResult {
		was := schema.SetBuiltinCheck(on)
		defer schema.SetBuiltinCheck(was)
		v, errs := schema.NewValidator(nil, opts)
		if len(errs) > 0 {
			tb.Fatal(errs)
		}
		return v.File(name, src)
	}
	type entity struct {
		Name, Type, ClientCA, Desc string
		SNIs, Protocols            []string
		Chains                     []schema.Chain
		Labels                     map[string]string
		ClientDepth                int
		Disabled                   bool
		Hash                       schema.Hash
		Pos                        schema.Pos
	}
	summary := func(fr *schema.FileResult) (problems []string, entities []entity) {
		for _, p := range fr.Problems {
			problems = append(problems, fmt.Sprintf("%s %s %s: %s", p.Severity, p.Pos, p.Field, p.Msg))
		}
		for _, e := range fr.Entities {
			entities = append(entities, entity{e.Name, string(e.Type), e.ClientCA, e.Desc, e.SNIs, e.Protocols,
				e.Chains, e.Labels, e.ClientDepth, e.Disabled, e.Hash, e.Pos})
		}
		return problems, entities
	}
	wantP, wantE := summary(validate(false))
	gotP, gotE := summary(validate(true))
	if diff := cmp.Diff(wantP, gotP); diff != "" {
		tb.Errorf("%s: problems with the built-in check differ from CUE's (-cue +builtin):\n%s", name, diff)
	}
	if diff := cmp.Diff(wantE, gotE); diff != "" {
		tb.Errorf("%s: entities with the built-in check differ from CUE's (-cue +builtin):\n%s", name, diff)
	}
}

// TestBuiltinCheckAgreesWithCUE validates every entity file of the golden
// cases and their variants with and without the Go check of the built-in
// schema: the problems and entities must be the same.
func TestBuiltinCheckAgreesWithCUE(t *testing.T) {
	accepted := 0
	for name, src := range builtinCorpus(t) {
		sameValidation(t, name, src)
		accepted += schema.BuiltinAccepts(name, src)
	}
	t.Logf("the built-in check accepted %d documents", accepted)
	if accepted < 20 {
		t.Errorf("the built-in check accepted %d documents of the corpus, want at least 20", accepted)
	}
}

// FuzzBuiltinCheck holds the Go check of the built-in schema to CUE's
// verdict on arbitrary files.
func FuzzBuiltinCheck(f *testing.F) {
	for name, src := range builtinCorpus(f) {
		f.Add(src, strings.HasSuffix(name, ".json"))
	}
	f.Fuzz(func(t *testing.T, src []byte, json bool) {
		name := "f.yaml"
		if json {
			name = "f.json"
		}
		sameValidation(t, name, src)
	})
}
