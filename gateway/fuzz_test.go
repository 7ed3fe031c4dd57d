package gateway

import (
	"strings"
	"testing"
)

// FuzzLookup compares the snapshot's hashed lookup with a plain
// implementation of DESIGN.md 3 over strings.
func FuzzLookup(f *testing.F) {
	p := newPKI(f)
	cfg := sniConfig(f, p, true)
	s := New(Options{})
	if err := s.Apply(cfg); err != nil {
		f.Fatal(err)
	}
	snap := s.snap.Load()
	owner := map[string]string{}
	for _, e := range cfg.Entities {
		for _, sni := range e.SNIs {
			owner[normalizeSNI(sni)] = e.Name
		}
	}
	reference := func(name string) string {
		name = strings.ToLower(strings.TrimSuffix(name, "."))
		if len(name) > maxNameLen || name == "" {
			return owner["*"]
		}
		if e, ok := owner[name]; ok {
			return e
		}
		if i := strings.IndexByte(name, '.'); i > 0 && i < len(name)-1 {
			if e, ok := owner["*."+name[i+1:]]; ok {
				return e
			}
		}
		return owner["*"]
	}
	for _, seed := range []string{"shop.example.com", "A.EXAMPLE.COM", "a.b.example.com", ".example.com", "example.com.", "*.example.com", ""} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if got, want := snap.entityName(snap.lookup(name)), reference(name); got != want {
			t.Errorf("lookup(%q) = %q, want %q", name, got, want)
		}
	})
}
