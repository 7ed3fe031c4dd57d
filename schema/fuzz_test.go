package schema_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"certops/schema"

	"golang.org/x/tools/txtar"
)

// FuzzValidate feeds arbitrary files to the loader and validator, as YAML
// and as JSON, with and without a policy. It must never panic, every
// problem must have a file and a message, and no problem may contain a
// full line of a test key. Seeds are the files of the golden cases.
func FuzzValidate(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join("testdata", "cases", "*.txtar"))
	for _, p := range paths {
		ar, err := txtar.ParseFile(p)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range ar.Files {
			if file.Name != "want" && !strings.HasSuffix(file.Name, ".cue") {
				f.Add(expand(f, file.Data), strings.HasSuffix(file.Name, ".json"))
			}
		}
	}
	// Whole lines of key material: scrub guarantees that no run of 40
	// base64 characters is quoted. A shorter tail line spliced into, say, a
	// reference name that is then quoted back is not a disclosure.
	var keyLines []string
	for _, l := range testKeyLines(f) {
		if len(l) >= 40 {
			keyLines = append(keyLines, l)
		}
	}
	opts := schema.Options{Now: func() time.Time { return testNow }}
	plain, _ := schema.NewValidator(nil, opts)
	policy, errs := schema.NewValidator([]schema.PolicyFile{{Path: "p.cue", Src: []byte(
		"package certops\n#SSL: labels: team: string\n#SSL: snis: [...=~\"example\"]\n#SSL: key: =~\"^\\\\$secret\"\n")}}, opts)
	if len(errs) > 0 {
		f.Fatal(errs)
	}
	f.Fuzz(func(t *testing.T, src []byte, json bool) {
		name := "f.yaml"
		if json {
			name = "f.json"
		}
		// A hang is a failure too: crash the worker so that the fuzzer
		// keeps the input.
		done := make(chan struct{})
		defer close(done)
		go func() {
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				panic(fmt.Sprintf("validation of a %d-byte input took over 10s", len(src)))
			}
		}()
		for _, v := range []*schema.Validator{plain, policy} {
			fr := v.File(name, src)
			for _, e := range fr.Problems {
				if e.Pos.File != name || e.Msg == "" {
					t.Errorf("problem without file or message: %#v", e)
				}
				msg := e.Error()
				for _, l := range keyLines {
					if strings.Contains(msg, l) {
						t.Errorf("problem quotes a test key: %s", e.Field)
					}
				}
			}
			set := schema.CheckSet([]*schema.FileResult{fr, fr})
			_ = set
			if fr.Problems.Err() == nil {
				for _, e := range fr.Entities {
					if _, err := e.Material(schema.Literal); err != nil && len(e.References()) == 0 {
						t.Errorf("valid literal entity %s has no material: %v", e.Name, err)
					}
				}
			}
		}
	})
}

// FuzzParseReference checks that ParseReference never panics, that a
// parsed reference prints as written, and agrees with IsReference.
func FuzzParseReference(f *testing.F) {
	for _, s := range []string{"$env://A", "$env://A/b", "$secret://vault/kv/a/b", "$secret://aws/x/y", "$SECRET://AWS/arn:aws:x",
		"$secret://vault", "$env://", "-----BEGIN", "", "$secret://gcp/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := schema.ParseReference(s)
		if err != nil {
			return
		}
		if !schema.IsReference(s) || r.String() != s || r.Path == "" {
			t.Errorf("ParseReference(%q) = %+v; IsReference %v", s, r, schema.IsReference(s))
		}
		if r.Provider != "env" && r.Provider != "vault" && r.Provider != "aws" {
			t.Errorf("ParseReference(%q): provider %q", s, r.Provider)
		}
	})
}

// FuzzNormalizeSNI checks that NormalizeSNI never panics, is idempotent,
// and returns only lowercase ASCII host names.
func FuzzNormalizeSNI(f *testing.F) {
	for _, s := range []string{"shop.example.com", "*.Example.COM.", "*", "bücher.example", "1.2.3.4", "a..b", "*.com", "xn--bcher-kva.example"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, err := schema.NormalizeSNI(s)
		if err != nil {
			return
		}
		again, err := schema.NormalizeSNI(n)
		if err != nil || again != n {
			t.Errorf("NormalizeSNI(%q) = %q, but NormalizeSNI(%q) = %q, %v", s, n, n, again, err)
		}
		for _, r := range n {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '.' || r == '*') {
				t.Errorf("NormalizeSNI(%q) = %q holds %q", s, n, r)
			}
		}
	})
}
