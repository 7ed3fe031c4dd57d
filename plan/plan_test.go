package plan

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"certops/fixtures"
	"certops/schema"
)

func schemaEntity(name string, snis []string, leaf *fixtures.Leaf) *schema.Entity {
	return &schema.Entity{
		Name: name, Type: schema.TypeServer, SNIs: snis,
		Chains:      []schema.Chain{{Cert: string(leaf.ChainPEM), Key: string(leaf.KeyPEM)}},
		ClientDepth: 1, Pos: schema.Pos{File: name + ".yaml", Line: 1, Col: 1},
	}
}

func TestDiff(t *testing.T) {
	ca := fixtures.NewRootCA(t, "plan CA")
	clientCA := fixtures.NewRootCA(t, "client CA")
	leaf := ca.Server(t, "a.example.com", "b.example.com")
	renewed := ca.Leaf(t, fixtures.LeafOptions{DNSNames: []string{"a.example.com", "b.example.com"}})
	// A certificate renewed on the same key: the cert changes, the key not.
	sameKey := *renewed
	sameKey.Key, sameKey.KeyPEM = leaf.Key, leaf.KeyPEM

	base := Describe(schemaEntity("a", []string{"a.example.com"}, leaf), nil)
	mod := func(f func(e *schema.Entity)) EntityInfo {
		e := schemaEntity("a", []string{"a.example.com"}, leaf)
		f(e)
		return Describe(e, nil)
	}
	tests := []struct {
		name    string
		running []EntityInfo
		desired []EntityInfo
		want    Summary
		fields  []string // fields of the one change
	}{
		{"unchanged", []EntityInfo{base}, []EntityInfo{base}, Summary{Unchanged: 1}, nil},
		{"create", nil, []EntityInfo{base}, Summary{Create: 1}, []string{"snis", "cert"}},
		{"delete", []EntityInfo{base}, nil, Summary{Delete: 1}, nil},
		{"snis", []EntityInfo{base}, []EntityInfo{mod(func(e *schema.Entity) { e.SNIs = []string{"b.example.com"} })}, Summary{Update: 1}, []string{"snis"}},
		{"new key and cert", []EntityInfo{base}, []EntityInfo{mod(func(e *schema.Entity) {
			e.Chains[0] = schema.Chain{Cert: string(renewed.ChainPEM), Key: string(renewed.KeyPEM)}
		})}, Summary{Update: 1}, []string{"cert", "key"}},
		{"cert renewed on the same key", []EntityInfo{base}, []EntityInfo{mod(func(e *schema.Entity) {
			e.Chains[0] = schema.Chain{Cert: string(sameKey.ChainPEM), Key: string(sameKey.KeyPEM)}
		})}, Summary{Update: 1}, []string{"cert"}},
		{"key reference only", []EntityInfo{mod(func(e *schema.Entity) { e.Chains[0].Key = "$env://KEY_A" })},
			[]EntityInfo{mod(func(e *schema.Entity) { e.Chains[0].Key = "$env://KEY_B" })}, Summary{Update: 1}, []string{"key"}},
		{"client CA", []EntityInfo{base}, []EntityInfo{mod(func(e *schema.Entity) { e.ClientCA = string(clientCA.CertPEM) })}, Summary{Update: 1}, []string{"client.ca"}},
		{"protocols", []EntityInfo{base}, []EntityInfo{mod(func(e *schema.Entity) { e.Protocols = []string{"TLSv1.3"} })}, Summary{Update: 1}, []string{"ssl_protocols"}},
		{"labels", []EntityInfo{base}, []EntityInfo{mod(func(e *schema.Entity) { e.Labels = map[string]string{"team": "payments"} })}, Summary{Update: 1}, []string{"labels"}},
		{"file", []EntityInfo{base}, []EntityInfo{mod(func(e *schema.Entity) { e.Pos.File = "teams/a.yaml" })}, Summary{Update: 1}, []string{"file"}},
		// APISIX status and desc (issue 18 items 3 and 9).
		{"disabled", []EntityInfo{base}, []EntityInfo{mod(func(e *schema.Entity) { e.Disabled = true })}, Summary{Update: 1}, []string{"status"}},
		{"create disabled", nil, []EntityInfo{mod(func(e *schema.Entity) { e.Disabled, e.Desc = true, "old shop" })}, Summary{Create: 1}, []string{"status", "desc", "snis", "cert"}},
		{"desc", []EntityInfo{base}, []EntityInfo{mod(func(e *schema.Entity) { e.Desc = "the shop" })}, Summary{Update: 1}, []string{"desc"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Diff(tt.running, tt.desired)
			if p.Summary != tt.want {
				t.Errorf("Diff summary = %+v, want %+v\n%s", p.Summary, tt.want, p)
			}
			var fields []string
			if len(p.Changes) == 1 {
				for _, f := range p.Changes[0].Fields {
					fields = append(fields, f.Field)
				}
			}
			if diff := cmp.Diff(tt.fields, fields); diff != "" {
				t.Errorf("fields (-want +got):\n%s\n%s", diff, p)
			}
			text := p.String()
			b, err := json.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			fixtures.LeafScanner(leaf, renewed).Check(t, "plan", text+string(b))
			var back Plan
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(p, &back); diff != "" {
				t.Errorf("JSON round trip (-want +got):\n%s", diff)
			}
		})
	}
}

func TestPlanString(t *testing.T) {
	ca := fixtures.NewRootCA(t, "plan CA")
	l1 := ca.Server(t, "a.example.com")
	l2 := ca.Server(t, "a.example.com", "c.example.com")
	old := []EntityInfo{
		Describe(schemaEntity("a", []string{"a.example.com"}, l1), nil),
		Describe(schemaEntity("gone", []string{"gone.example.com"}, l1), nil),
	}
	newer := []EntityInfo{
		Describe(schemaEntity("a", []string{"a.example.com", "c.example.com"}, l2), nil),
		Describe(schemaEntity("b", []string{"b.example.com"}, l1), nil),
	}
	text := Diff(old, newer).String()
	for _, want := range []string{
		"+ create b (b.yaml)",
		"~ update a (a.yaml)",
		"    snis: + c.example.com",
		"serial " + l1.Cert.SerialNumber.Text(16),
		"→ serial " + l2.Cert.SerialNumber.Text(16),
		"- delete gone (gone.yaml)",
		"Summary: 1 to create, 1 to update, 1 to delete, 0 unchanged.",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("plan text lacks %q:\n%s", want, text)
		}
	}
}

func TestDescribeMaterial(t *testing.T) {
	ca := fixtures.NewRootCA(t, "describe CA")
	leaf := ca.Leaf(t, fixtures.LeafOptions{DNSNames: []string{"x.example.com"}, Key: fixtures.RSA})
	e := schemaEntity("x", []string{"x.example.com"}, leaf)
	m, err := e.Material(schema.Literal)
	if err != nil {
		t.Fatal(err)
	}
	withM, without := Describe(e, m), Describe(e, nil)
	if diff := cmp.Diff(without, withM); diff != "" {
		t.Errorf("Describe with and without material differ (-nil +material):\n%s", diff)
	}
	c := withM.Chains[0]
	if c.KeyType != "RSA 2048" || c.Serial != leaf.Cert.SerialNumber.Text(16) || c.Fingerprint != sha256Hex(leaf.Cert.Raw) ||
		c.PublicKeyFingerprint != sha256Hex(leaf.Cert.RawSubjectPublicKeyInfo) {
		t.Errorf("Describe chain = %+v", c)
	}
	b, _ := json.Marshal(withM)
	fixtures.LeafScanner(leaf).Check(t, "EntityInfo", string(b))
}
