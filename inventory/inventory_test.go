package inventory

import (
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"encoding/pem"
	"os"
	"strings"
	"testing"
	"time"

	"certops/certcheck"
	"certops/fixtures"
	"certops/schema"
)

// noKeyMaterial fails when out holds PEM or any 32-character piece of the
// base64 of one of keys.
func noKeyMaterial(tb testing.TB, what string, out []byte, keys ...[]byte) {
	tb.Helper()
	if bytes.Contains(out, []byte("-----BEGIN")) {
		tb.Errorf("%s: output holds a PEM block", what)
	}
	for _, k := range keys {
		b, _ := pem.Decode(k)
		enc := base64.StdEncoding.EncodeToString(b.Bytes)
		for i := 0; i+32 <= len(enc); i += 16 {
			if bytes.Contains(out, []byte(enc[i:i+32])) {
				tb.Errorf("%s: output holds part of a private key", what)
				break
			}
		}
	}
}

type testRepo struct {
	dir  string
	keys [][]byte
	root *fixtures.CA
	now  time.Time
}

func newTestRepo(t *testing.T) *testRepo {
	t.Helper()
	root := fixtures.NewRootCA(t, "Inventory Root")
	inter := root.Intermediate(t, "Inventory Intermediate")
	now := time.Now()
	shop := inter.Leaf(t, fixtures.LeafOptions{DNSNames: []string{"shop.example.com"}, NotAfter: now.Add(90*24*time.Hour + time.Hour)})
	api := inter.CustomLeaf(t, fixtures.CustomLeaf{LeafOptions: fixtures.LeafOptions{DNSNames: []string{"api.example.com"}, NotAfter: now.Add(30*24*time.Hour + time.Hour)},
		PrivateKey: fixtures.RSAKey(t, 2048)})
	dir := fixtures.WriteFiles(t, map[string]string{
		"shop.yaml": fixtures.EntityYAML(fixtures.Entity{Name: "shop", SNIs: []string{"shop.example.com"}, Chains: []*fixtures.Leaf{shop},
			Labels: map[string]string{"team": "storefront"}}),
		"api/api.yaml": fixtures.EntityYAML(fixtures.Entity{Name: "api", SNIs: []string{"api.example.com"}, Chains: []*fixtures.Leaf{api},
			Labels: map[string]string{"owner": "api-team", "team": "ignored"}}),
		"vault.yaml":   "name: vaulted\nsnis: [v.example.com]\ncert: $secret://vault/kv/tls/v/cert\nkey: $secret://vault/kv/tls/v/key\n",
		"ca.roots.pem": string(root.CertPEM),
	})
	return &testRepo{dir: dir, keys: [][]byte{shop.KeyPEM, api.KeyPEM}, root: root, now: now}
}

func (r *testRepo) records(t *testing.T) []Record {
	t.Helper()
	fsys := os.DirFS(r.dir)
	res, err := schema.Load(fsys, schema.Options{})
	if err != nil || res.Problems.Err() != nil {
		t.Fatalf("load: %v %v", err, res.Problems)
	}
	pinned, err := certcheck.PinnedRoots(fsys, ".")
	if err != nil || len(pinned) != 1 {
		t.Fatalf("PinnedRoots() = %d roots, %v; want 1", len(pinned), err)
	}
	return FromEntities(res.Entities, Options{Now: r.now, Checker: certcheck.New(certcheck.Options{Private: pinned})})
}

func TestFromEntities(t *testing.T) {
	r := newTestRepo(t)
	recs := r.records(t)
	if len(recs) != 3 {
		t.Fatalf("FromEntities() = %d records, want 3: %+v", len(recs), recs)
	}
	byName := map[string]Record{}
	for _, rec := range recs {
		byName[rec.Entity] = rec
	}
	tests := []struct {
		entity, file, owner, key, issuer string
		days                             int
		trust                            certcheck.Trust
	}{
		{"shop", "shop.yaml", "storefront", "ECDSA P-256", "CN=Inventory Intermediate,O=certops test", 90, certcheck.TrustPrivate},
		{"api", "api/api.yaml", "api-team", "RSA 2048", "CN=Inventory Intermediate,O=certops test", 30, certcheck.TrustPrivate},
	}
	for _, tt := range tests {
		got := byName[tt.entity]
		if got.File != tt.file || got.Owner != tt.owner || got.Key() != tt.key || got.Issuer != tt.issuer || got.DaysLeft != tt.days ||
			got.Trust != tt.trust || got.Serial == "" || got.Line == 0 || got.PublicKeySHA256 == "" {
			t.Errorf("record %s = %+v, want file %s owner %s key %s issuer %s, %d days left, trust %s",
				tt.entity, got, tt.file, tt.owner, tt.key, tt.issuer, tt.days, tt.trust)
		}
	}
	if v := byName["vaulted"]; v.Known() || v.CertRef != "$secret://vault/kv/tls/v/cert" {
		t.Errorf("record vaulted = %+v, want only its reference", v)
	}
}

func TestWriteFormats(t *testing.T) {
	r := newTestRepo(t)
	recs := r.records(t)
	recs[0].Commit = "0123456789abcdef0123456789abcdef01234567"
	for _, f := range []Format{FormatText, FormatJSON, FormatCSV, FormatMarkdown} {
		t.Run(f.String(), func(t *testing.T) {
			var b bytes.Buffer
			if err := Write(&b, recs, f, WriteOptions{Source: r.dir, Now: r.now}); err != nil {
				t.Fatal(err)
			}
			out := b.String()
			noKeyMaterial(t, "Write "+f.String(), b.Bytes(), r.keys...)
			key := "RSA 2048"
			if f == FormatJSON {
				key = `"key_bits": 2048`
			}
			for _, want := range []string{"shop.example.com", "api/api.yaml", key, "CN=Inventory Intermediate", "storefront", "$secret://vault/kv/tls/v/cert"} {
				if !strings.Contains(out, want) {
					t.Errorf("Write(%s) lacks %q:\n%s", f, want, out)
				}
			}
			switch f {
			case FormatText:
				if !strings.Contains(out, "0123456789ab\n") || !strings.Contains(out, "3 certificates in ") {
					t.Errorf("text lacks the short commit or the summary:\n%s", out)
				}
			case FormatJSON:
				var doc jsonInventory
				if err := json.Unmarshal(b.Bytes(), &doc); err != nil || len(doc.Certificates) != 3 || doc.Certificates[0].Commit != recs[0].Commit {
					t.Errorf("json = %+v, %v; want 3 certificates with the commit", doc, err)
				}
			case FormatCSV:
				rows, err := csv.NewReader(&b).ReadAll()
				if err != nil || len(rows) != 4 || rows[0][0] != "entity" || rows[0][10] != "days_left" {
					t.Errorf("csv = %v, %v; want a header and 3 rows", rows, err)
				}
			case FormatMarkdown:
				if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 5 || !strings.HasPrefix(lines[1], "| --- |") {
					t.Errorf("markdown = %q, want a table of 3 rows", out)
				}
			}
		})
	}
}

func TestParseHorizon(t *testing.T) {
	tests := []struct {
		in   string
		want int
		err  bool
	}{{"52w", 52, false}, {"90d", 13, false}, {"168h", 1, false}, {"1h", 1, false}, {"0w", 0, true}, {"x", 0, true}, {"1000w", 0, true}}
	for _, tt := range tests {
		got, err := ParseHorizon(tt.in)
		if got != tt.want || (err != nil) != tt.err {
			t.Errorf("ParseHorizon(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

func TestForecast(t *testing.T) {
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	var recs []Record
	add := func(entity, owner string, expiresIn time.Duration, lifetimeDays int, trust certcheck.Trust) {
		na := now.Add(expiresIn)
		recs = append(recs, Record{Entity: entity, Chain: "cert", Owner: owner, Trust: trust,
			NotBefore: na.Add(-time.Duration(lifetimeDays)*day + time.Second), NotAfter: na})
	}
	// A generated spread: one private certificate expiring every other
	// week for a year-long lifetime...
	for i := range 26 {
		add("spread-"+string(rune('a'+i)), "platform", time.Duration(14*i)*day+day, 365, certcheck.TrustPrivate)
	}
	// ...and six of one team in week 5: a cluster.
	for i := range 6 {
		add("batch-"+string(rune('a'+i)), "payments", 4*7*day+2*day, 365, certcheck.TrustPrivate)
	}
	// A public 398-day certificate expiring in week 2 is renewed once in
	// the year now; under SC-081 its next issuance (2026-12) gets 200
	// days, and the one after (2027-06) 100 days: it expires three times.
	add("public", "web", 8*day, 398, certcheck.TrustPublic)
	recs = append(recs, Record{Entity: "vaulted", CertRef: "$env://X"})

	fc := NewForecast(recs, now, 52)
	if len(fc.Weeks) != 52 || fc.Unknown != 1 {
		t.Fatalf("NewForecast() = %d weeks, %d unknown; want 52, 1", len(fc.Weeks), fc.Unknown)
	}
	if w := fc.Weeks[4]; w.Total != 7 || w.ByOwner["payments"] != 6 || !w.Cluster {
		t.Errorf("week 5 = %+v, want 7 expiries (6 payments), a cluster", w)
	}
	for i, w := range fc.Weeks {
		if i != 4 && w.Cluster {
			t.Errorf("week %d = %+v is a cluster, want only week 5", i+1, w)
		}
	}
	if fc.Median != 1 {
		t.Errorf("median = %g, want 1", fc.Median)
	}
	var pub Projection
	for _, p := range fc.Certificates {
		if p.Entity == "public" {
			pub = p
		}
	}
	if pub.Renewals != 1 || pub.SC081Renewals != 3 || pub.CappedDays != 200 || pub.LifetimeDays != 398 {
		t.Errorf("projection of public = %+v, want 1 renewal now, 3 under SC-081 (200 days, then 100 from 2027-03-15), capped at 200 days", pub)
	}
	if w := fc.Weeks[1]; w.Total != 1 || w.SC081Total != 1 {
		t.Errorf("week 2 = %+v, want the public certificate in both", w)
	}
	sc := 0
	for _, w := range fc.Weeks {
		sc += w.SC081Total - w.Total
	}
	if sc != 2 {
		t.Errorf("SC-081 adds %d expiries in the year, want 2", sc)
	}
	for _, f := range []Format{FormatText, FormatJSON, FormatCSV, FormatMarkdown} {
		var b bytes.Buffer
		if err := fc.Write(&b, f); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		noKeyMaterial(t, "forecast "+f.String(), b.Bytes())
		for _, want := range []string{"payments", "2026-12-29", "public"} {
			if !strings.Contains(out, want) {
				t.Errorf("forecast %s lacks %q:\n%s", f, want, out)
			}
		}
		if f == FormatText && !strings.Contains(out, "clusters now (more than twice the median of 1 a week): week 5 (2026-12-29): 7") {
			t.Errorf("forecast text lacks the cluster line:\n%s", out)
		}
	}
}
