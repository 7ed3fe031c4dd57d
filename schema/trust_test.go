package schema

import (
	"os"
	"testing"

	"certops/certcheck"
	"certops/fixtures"
)

// TestEntityTrust: the trust verdict of each chain is the one the hygiene
// checks gave while validating, by chain index; "" without the checks and
// for a certificate behind an unresolved reference.
func TestEntityTrust(t *testing.T) {
	pinned := fixtures.NewRootCA(t, "pinned root")
	other := fixtures.NewRootCA(t, "other root")
	a, b := pinned.Server(t, "a.example.com"), other.Server(t, "a.example.com")
	doc := fixtures.EntityYAML(fixtures.Entity{Name: "a", SNIs: []string{"a.example.com"}, Chains: []*fixtures.Leaf{a, b}})
	dir := fixtures.WriteFiles(t, map[string]string{
		"a.yaml":       doc,
		"ref.yaml":     "name: ref\nsnis: [r.example.com]\ncert: $env://REF_CERT\nkey: $env://REF_KEY\n",
		"ca.roots.pem": string(pinned.CertPEM),
	})
	for _, tt := range []struct {
		name string
		h    *Hygiene
		want []certcheck.Trust // of a's chains, then ref's
	}{
		{"with the checks", &Hygiene{}, []certcheck.Trust{certcheck.TrustPrivate, certcheck.TrustUntrusted, ""}},
		{"without", nil, []certcheck.Trust{"", "", ""}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Load(os.DirFS(dir), Options{Hygiene: tt.h})
			if err != nil {
				t.Fatal(err)
			}
			byName := map[string]*Entity{}
			for _, e := range res.Entities {
				byName[e.Name] = e
			}
			if byName["a"] == nil || byName["ref"] == nil {
				t.Fatalf("Load = %v, %v; want entities a and ref", res.Entities, res.Problems)
			}
			got := []certcheck.Trust{byName["a"].Trust(0), byName["a"].Trust(1), byName["ref"].Trust(0)}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("Trust = %q, want %q", got, tt.want)
					break
				}
			}
			if g := byName["a"].Trust(5); g != "" {
				t.Errorf("Trust(5) of a two-chain entity = %q, want \"\"", g)
			}
		})
	}
}
