package schema_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"certops/fixtures"
	"certops/schema"
)

func TestNormalizeSNI(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  string
	}{
		{in: "shop.example.com", want: "shop.example.com"},
		{in: "Shop.Example.COM.", want: "shop.example.com"},
		{in: "*", want: "*"},
		{in: "*.Example.com", want: "*.example.com"},
		{in: "bücher.example", want: "xn--bcher-kva.example"},
		{in: "*.BÜCHER.example", want: "*.xn--bcher-kva.example"},
		{in: "localhost", want: "localhost"},
		{in: "", wantErr: "empty"},
		{in: ".", wantErr: "empty"},
		{in: "192.0.2.1", wantErr: "IP address"},
		{in: "2001:db8::1", wantErr: "IP address"},
		{in: "[::1]", wantErr: "IP address"},
		{in: "a.*.example.com", wantErr: "leftmost label"},
		{in: "*a.example.com", wantErr: "leftmost label"},
		{in: "*.com", wantErr: "below a registered name"},
		{in: "a b.example", wantErr: "white space"},
		{in: "a_b.example", wantErr: "underscore"},
		{in: "-a.example", wantErr: "hyphen"},
		{in: "a..example", wantErr: "empty label"},
		{in: strings.Repeat("a", 64) + ".example", wantErr: "63"},
		{in: "a\u200db.example", wantErr: "A-label"},
		{in: "xn--bcher-kva.example", want: "xn--bcher-kva.example"},
		{in: "*.XN--Bcher-kva.example", want: "*.xn--bcher-kva.example"},
		{in: "xn--i-7iq.ws", want: "xn--i-7iq.ws"}, // decodes: kept, whatever IDNA says of its characters
		{in: "xn--zz.acme.test", wantErr: `label "xn--zz" is not an A-label`},
		{in: "shop.xn--.example", wantErr: "hyphen"},
	}
	for _, tt := range tests {
		got, err := schema.NormalizeSNI(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("NormalizeSNI(%q) = %q, %v; want an error about %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("NormalizeSNI(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestParseReference(t *testing.T) {
	tests := []struct {
		in           string
		provider     string
		path         string
		wantErr      string
		notReference bool
	}{
		{in: "$env://SHOP_KEY", provider: "env", path: "SHOP_KEY"},
		{in: "$ENV://shop_key/pem", provider: "env", path: "shop_key/pem"},
		{in: "$secret://vault/kv/tls/shop/key", provider: "vault", path: "kv/tls/shop/key"},
		{in: "$Secret://AWS/prod/tls/shop", provider: "aws", path: "prod/tls/shop"},
		{in: "$secret://aws/arn:aws:secretsmanager:eu-west-1:123:secret:tls-AbC/key", provider: "aws", path: "arn:aws:secretsmanager:eu-west-1:123:secret:tls-AbC/key"},
		{in: "-----BEGIN CERTIFICATE-----", notReference: true},
		{in: "$vault://kv/x", notReference: true},
		{in: "$env://", wantErr: "empty path"},
		{in: "$env://1X", wantErr: "environment variable name"},
		{in: "$env://A/b/c", wantErr: "NAME/field"},
		{in: "$secret://vault/kv", wantErr: "a path and a field"},
		{in: "$secret://vault/kv/../x/key", wantErr: ". and .."},
		{in: "$secret://vault/kv//key", wantErr: "empty path segment"},
		{in: "$secret://gcp/x/y", wantErr: "unknown provider"},
		{in: "$secret://vault", wantErr: "want $secret://vault"},
		{in: "$secret://aws/a b", wantErr: "white space"},
		{in: "$secret://aws/a#b", wantErr: "not allowed in an AWS secret id"},
	}
	for _, tt := range tests {
		r, err := schema.ParseReference(tt.in)
		switch {
		case tt.notReference:
			if !errors.Is(err, schema.ErrNotReference) {
				t.Errorf("ParseReference(%q) error = %v, want ErrNotReference", tt.in, err)
			}
		case tt.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParseReference(%q) = %+v, %v; want an error about %q", tt.in, r, err, tt.wantErr)
			}
		default:
			if err != nil || r.Provider != tt.provider || r.Path != tt.path || r.String() != tt.in {
				t.Errorf("ParseReference(%q) = %+v (%q), %v; want provider %q path %q", tt.in, r, r.String(), err, tt.provider, tt.path)
			}
		}
	}
}

// refEntity is an entity whose every value is a secret reference.
const refEntity = `name: shop
snis: [shop.example.com, www.shop.example.com]
cert: $secret://vault/kv/tls/shop/cert
key: $env://SHOP_KEY
client:
  ca: $secret://aws/prod/client-ca
`

func loadOne(tb testing.TB, src string) *schema.Entity {
	tb.Helper()
	v, errs := schema.NewValidator(nil, schema.Options{Now: func() time.Time { return testNow }})
	if len(errs) > 0 {
		tb.Fatal(errs)
	}
	fr := v.File("e.yaml", expand(tb, []byte(src)))
	if err := fr.Problems.Err(); err != nil || len(fr.Entities) != 1 {
		tb.Fatalf("File: %d entities, %v", len(fr.Entities), err)
	}
	return fr.Entities[0]
}

func TestReferences(t *testing.T) {
	e := loadOne(t, refEntity)
	var got []string
	for _, r := range e.References() {
		got = append(got, r.Provider+":"+r.Path)
	}
	want := "vault:kv/tls/shop/cert env:SHOP_KEY aws:prod/client-ca"
	if strings.Join(got, " ") != want {
		t.Errorf("References() = %v, want %s", got, want)
	}
	if refs := loadOne(t, shopEntity).References(); len(refs) != 0 {
		t.Errorf("References() of a literal entity = %v, want none", refs)
	}
}

// TestMaterialResolved runs the checks of DESIGN.md 2.4 on resolved values:
// a bad value is refused naming the entity, field and reference, never the
// value.
func TestMaterialResolved(t *testing.T) {
	e := loadOne(t, refEntity)
	shopCert, shopKey, caPEM := pemOf(t, "shop.crt"), pemOf(t, "shop.key"), pemOf(t, "ca.crt")
	values := func(cert, key, ca []byte) schema.Values {
		return func(v string) ([]byte, error) {
			switch v {
			case "$secret://vault/kv/tls/shop/cert":
				return cert, nil
			case "$env://SHOP_KEY":
				return key, nil
			case "$secret://aws/prod/client-ca":
				return ca, nil
			}
			return nil, fmt.Errorf("unexpected value requested")
		}
	}
	m, err := e.Material(values(shopCert, shopKey, caPEM))
	if err != nil {
		t.Fatalf("Material with good values: %v", err)
	}
	if len(m.Chains) != 1 || m.Chains[0].Leaf == nil || m.Chains[0].Leaf.Subject.CommonName != "shop.example.com" || m.ClientCAs == nil {
		t.Fatalf("Material = %+v, want one chain with Leaf set and a client CA pool", m)
	}

	storeDown := errors.New("vault unreachable")
	tests := []struct {
		name   string
		values schema.Values
		want   []string
	}{
		{"key mismatch", values(shopCert, pemOf(t, "other-ec.key"), caPEM), []string{"entity shop", "key ($env://SHOP_KEY)", "does not match"}},
		{"SNI not covered", values(pemOf(t, "rsa.crt"), pemOf(t, "rsa.key"), caPEM), []string{"entity shop", "snis[0]", "not covered by cert ($secret://vault/kv/tls/shop/cert)"}},
		{"expired", values(pemOf(t, "expired.crt"), pemOf(t, "expired.key"), caPEM), []string{"expired at 2030-01-01"}},
		{"key in cert", values(shopKey, shopKey, caPEM), []string{"cert ($secret://vault/kv/tls/shop/cert)", "private key, not a certificate"}},
		{"client CA not a CA", values(shopCert, shopKey, shopCert), []string{"client.ca ($secret://aws/prod/client-ca)", "not a CA"}},
		{"store error", func(string) ([]byte, error) { return nil, storeDown }, []string{"entity shop", "cert ($secret://vault/kv/tls/shop/cert)", "vault unreachable"}},
	}
	keyLines := testKeyLines(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.Material(tt.values)
			if err == nil {
				t.Fatal("Material succeeded, want an error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Material error %q does not contain %q", err, w)
				}
			}
			for _, l := range keyLines {
				if strings.Contains(err.Error(), l) {
					t.Errorf("Material error contains key material")
				}
			}
		})
	}
	if _, err := e.Material(func(string) ([]byte, error) { return nil, storeDown }); !errors.Is(err, storeDown) {
		t.Errorf("Material error %v does not wrap the Values error", err)
	}
}

// TestMaterialLiteralParsedOnce checks that validation's parsed material
// of a literal entity is handed to the first Material call, and that the
// entity does not keep it: a later call parses again, to an equal result.
func TestMaterialLiteralParsedOnce(t *testing.T) {
	e := loadOne(t, shopEntity)
	noValues := func(string) ([]byte, error) { return nil, errors.New("no values") }
	// Whatever values is: nothing is parsed.
	m1, err := e.Material(noValues)
	if err != nil {
		t.Fatalf("first Material = %v, want validation's material", err)
	}
	if m1.Chains[0].Leaf == nil {
		t.Errorf("Leaf not set")
	}
	if _, err := e.Material(noValues); err == nil {
		t.Errorf("second Material did not parse (values not asked)")
	}
	m2, err := e.Material(schema.Literal)
	if err != nil {
		t.Fatalf("second Material = %v", err)
	}
	if m2 == m1 {
		t.Errorf("second Material returned the material already handed over")
	}
	if !m2.Chains[0].Leaf.Equal(m1.Chains[0].Leaf) {
		t.Errorf("second Material parsed another certificate")
	}
	if _, err := schema.Literal("$env://X"); err == nil {
		t.Errorf("Literal resolved a reference")
	}
}

func TestEntityFields(t *testing.T) {
	src := "name: dual\nsnis: [\"Dual.Example.com.\"]\ncert: |\n  {{pem dual-rsa.crt}}\nkey: |\n  {{pem dual-rsa.key}}\n" +
		"certs:\n  - |\n    {{pem dual-ec.crt}}\nkeys:\n  - |\n    {{pem dual-ec.key}}\nssl_protocols: [TLSv1.3]\nlabels: {team: a}\nclient:\n  ca: $env://CA\n"
	e := loadOne(t, src)
	keysLine := 1 + bytes.Count(expand(t, []byte(src))[:bytes.Index(expand(t, []byte(src)), []byte("keys:"))], []byte("\n"))
	if e.Type != schema.TypeServer || len(e.Chains) != 2 || e.SNIs[0] != "dual.example.com" || e.ClientDepth != 1 ||
		e.ClientCA != "$env://CA" || e.Protocols[0] != "TLSv1.3" || e.Labels["team"] != "a" || e.Hash == (schema.Hash{}) {
		t.Errorf("entity = %+v", e)
	}
	if got := e.Position("keys[0]"); got.Line != keysLine+1 || got.Col != 5 {
		t.Errorf("Position(keys[0]) = %v, want line %d column 5", got, keysLine+1)
	}
	other := loadOne(t, "# a comment moves the entity\n"+strings.Replace(refEntity, "", "", 1))
	again := loadOne(t, refEntity)
	if other.Hash != again.Hash {
		t.Errorf("Hash depends on the position in the file")
	}
}

func TestPolicyHash(t *testing.T) {
	a, _ := schema.NewValidator(nil, schema.Options{})
	b, _ := schema.NewValidator([]schema.PolicyFile{{Path: "p.cue", Src: []byte("package certops\n#SSL: labels: team: string\n")}}, schema.Options{})
	c, _ := schema.NewValidator([]schema.PolicyFile{{Path: "p.cue", Src: []byte("package certops\n#SSL: labels: team: string\n")}}, schema.Options{})
	d, _ := schema.NewValidator(nil, schema.Options{WarnWithin: time.Hour})
	if a.PolicyHash() == b.PolicyHash() || b.PolicyHash() != c.PolicyHash() || a.PolicyHash() == d.PolicyHash() {
		t.Errorf("PolicyHash: none %s, policy %s, same policy %s, other warn-within %s", a.PolicyHash(), b.PolicyHash(), c.PolicyHash(), d.PolicyHash())
	}
}

// TestValidatorConcurrent validates files from many goroutines with one
// Validator (run with -race).
func TestValidatorConcurrent(t *testing.T) {
	v, errs := schema.NewValidator([]schema.PolicyFile{{Path: "p.cue", Src: []byte("package certops\n#SSL: labels?: team: string\n")}},
		schema.Options{Now: func() time.Time { return testNow }})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	good := expand(t, []byte(shopEntity))
	bad := expand(t, []byte(strings.Replace(shopEntity, "shop.key", "other-ec.key", 1)))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 20 {
				src, wantErr := good, false
				if (i+j)%2 == 1 {
					src, wantErr = bad, true
				}
				fr := v.File(fmt.Sprintf("f%d-%d.yaml", i, j), src)
				if (fr.Problems.Err() != nil) != wantErr || len(fr.Entities) != 1 {
					t.Errorf("File: %d entities, %v; want error %v", len(fr.Entities), fr.Problems, wantErr)
				}
			}
		})
	}
	wg.Wait()
}

func TestCheckSetNamesBothPlaces(t *testing.T) {
	v, _ := schema.NewValidator(nil, schema.Options{Now: func() time.Time { return testNow }})
	a := v.File("a.yaml", expand(t, []byte(shopEntity)))
	b := v.File("b.yaml", expand(t, []byte("---\n"+shopEntity)))
	for _, files := range [][]*schema.FileResult{{a, b}, {b, a}} {
		errs := CheckSetStrings(files)
		want := []string{
			"b.yaml:2:7: name: entity name shop is also used at a.yaml:1:7",
			"b.yaml:3:8: snis[0]: shop.example.com is also served by entity shop at a.yaml:2:8",
		}
		if strings.Join(errs, "\n") != strings.Join(want, "\n") {
			t.Errorf("CheckSet = %q, want %q", errs, want)
		}
	}
}

func CheckSetStrings(files []*schema.FileResult) []string {
	var out []string
	for _, e := range schema.CheckSet(files) {
		out = append(out, e.Error())
	}
	return out
}

// TestReportFormats checks the JSON and GitHub renderings of a problem and
// that a warning is told from an error.
func TestReportFormats(t *testing.T) {
	res := &schema.Result{Files: 1, Problems: schema.ErrorList{
		{Pos: schema.Pos{File: "a,b.yaml", Line: 3, Col: 7}, Field: "cert", Msg: "100% wrong\nreally"},
		{Pos: schema.Pos{File: "c.yaml", Line: 1, Col: 1}, Field: "cert", Msg: "expires soon", Severity: schema.SeverityWarning},
	}}
	var gh bytes.Buffer
	if err := schema.WriteReport(&gh, res, schema.FormatGitHub, schema.ReportOptions{Dir: "certs"}); err != nil {
		t.Fatal(err)
	}
	want := "::error file=certs/a%2Cb.yaml,line=3,col=7::cert: 100%25 wrong%0Areally\n" +
		"::warning file=certs/c.yaml,line=1,col=1::cert: expires soon\n" +
		"invalid: 0 entities in 1 file: 1 error, 1 warning\n"
	if gh.String() != want {
		t.Errorf("github report:\n%s\nwant:\n%s", gh.String(), want)
	}
	var js bytes.Buffer
	if err := schema.WriteReport(&js, res, schema.FormatJSON, schema.ReportOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{`"valid": false`, `"severity": "warning"`, `"line": 3`, `"column": 7`, `"field": "cert"`} {
		if !strings.Contains(js.String(), w) {
			t.Errorf("json report lacks %s:\n%s", w, js.String())
		}
	}
	if _, err := schema.ParseFormat("xml"); err == nil {
		t.Errorf("ParseFormat(xml) succeeded")
	}
}

// TestBuiltinSchemaIsPrinted keeps `certops schema` honest.
func TestBuiltinSchemaIsPrinted(t *testing.T) {
	if !bytes.Contains(schema.Source(), []byte("#SSL: {")) {
		t.Errorf("Source() does not hold #SSL")
	}
}

func ExampleNormalizeSNI() {
	for _, s := range []string{"Shop.Example.com.", "*.bücher.example", "10.0.0.1"} {
		n, err := schema.NormalizeSNI(s)
		fmt.Println(n, err)
	}
	// Output:
	// shop.example.com <nil>
	// *.xn--bcher-kva.example <nil>
	//  an IP address is not a server name: SNI carries host names only (RFC 6066 section 3)
}

func ExampleParseReference() {
	r, err := schema.ParseReference("$secret://vault/kv/tls/shop/key")
	fmt.Println(r.Provider, r.Path, err)
	// Output: vault kv/tls/shop/key <nil>
}

var _ = fixtures.ECDSA

// TestStatusAndDesc checks what an APISIX status and a desc become on the
// entity: Disabled for status 0, enabled otherwise, Desc kept, and both
// part of the content hash (a toggle is a change to apply).
func TestStatusAndDesc(t *testing.T) {
	v, _ := schema.NewValidator(nil, schema.Options{Now: func() time.Time { return testNow }})
	item := func(status string) []byte {
		return expand(t, []byte("ssls:\n  - id: shop\n    desc: the shop\n"+status+"    snis: [shop.example.com]\n    cert: |\n      {{pem shop.crt}}\n    key: |\n      {{pem shop.key}}\n"))
	}
	tests := []struct {
		name     string
		status   string
		disabled bool
	}{
		{"absent", "", false},
		{"one", "    status: 1\n", false},
		{"zero", "    status: 0\n", true},
	}
	hashes := map[bool]schema.Hash{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fr := v.File("apisix.yaml", item(tt.status))
			if err := fr.Problems.Err(); err != nil || len(fr.Entities) != 1 {
				t.Fatalf("File: %d entities, %v", len(fr.Entities), err)
			}
			e := fr.Entities[0]
			if e.Disabled != tt.disabled || e.Enabled() == tt.disabled {
				t.Errorf("status %q: Disabled = %v, Enabled() = %v; want Disabled %v", tt.status, e.Disabled, e.Enabled(), tt.disabled)
			}
			if e.Desc != "the shop" {
				t.Errorf("Desc = %q, want %q", e.Desc, "the shop")
			}
			if h, ok := hashes[e.Disabled]; ok && h != e.Hash {
				t.Errorf("status %q: hash %s differs from another entity with the same status", tt.status, e.Hash)
			}
			hashes[e.Disabled] = e.Hash
		})
	}
	if hashes[true] == hashes[false] {
		t.Errorf("a disabled and an enabled entity have the same hash")
	}
}
