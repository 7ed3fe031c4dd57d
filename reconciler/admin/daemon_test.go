package admin_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"certops/fixtures"
	"certops/internal/daemontest"
	"certops/plan"
	"certops/reconciler"
	"certops/reconciler/admin"
)

// daemon is a real reconciler and gateway behind the admin API, as `certops
// run` wires them (internal/daemontest).
type daemon struct {
	api     *httptest.Server
	gateway string // address of the TLS listener
	rec     *reconciler.Reconciler
	keys    [][]byte // every private key in the repository (PEM)
	shop    *fixtures.Leaf
	ca      *fixtures.CA
}

const testToken = "test-admin-token"

func startDaemon(t *testing.T) *daemon {
	t.Helper()
	ca := fixtures.NewRootCA(t, "admin test CA")
	shop := ca.Server(t, "shop.test", "www.shop.test")
	apiEC := ca.Server(t, "api.test")
	apiRSA := ca.Leaf(t, fixtures.LeafOptions{DNSNames: []string{"api.test"}, Key: fixtures.RSA})
	upstream := ca.Leaf(t, fixtures.LeafOptions{DNSNames: []string{"gateway.internal"}, Client: true})
	dir := fixtures.WriteFiles(t, map[string]string{
		"shop.yaml": fixtures.EntityYAML(fixtures.Entity{Name: "shop", SNIs: []string{"shop.test", "www.shop.test"},
			Chains: []*fixtures.Leaf{shop}, Labels: map[string]string{"team": "web"}}),
		"api/api.yaml": fixtures.EntityYAML(fixtures.Entity{Name: "api", SNIs: []string{"api.test"},
			Chains: []*fixtures.Leaf{apiEC, apiRSA}, ClientCA: ca, Protocols: []string{"TLSv1.3"}}),
		"upstream.yaml": fixtures.EntityYAML(fixtures.Entity{Name: "upstream", Type: "client", Chains: []*fixtures.Leaf{upstream}}),
	})
	td := daemontest.Start(t, daemontest.Options{FS: os.DirFS(dir), Token: []byte(testToken), WebhookSecret: []byte("hook"), Ref: "main"})
	return &daemon{api: td.API, gateway: td.Addr, rec: td.Reconciler, shop: shop, ca: ca,
		keys: [][]byte{shop.KeyPEM, apiEC.KeyPEM, apiRSA.KeyPEM, upstream.KeyPEM}}
}

// call makes a request to the admin API and returns the status and body,
// after checking the body for private keys.
func (d *daemon) call(t *testing.T, method, path, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, d.api.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := d.api.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	noKeys(t, method+" "+path, body, d.keys)
	return resp.StatusCode, body
}

// noKeys fails when out holds a PEM private key block or material of one
// of keys (fixtures' leak scanner).
func noKeys(tb testing.TB, what string, out []byte, keys [][]byte) {
	tb.Helper()
	fixtures.PEMScanner(tb, keys...).Check(tb, what+": output", string(out))
}

func TestAdminAPIEndToEnd(t *testing.T) {
	d := startDaemon(t)

	// Before the first reconcile.
	if code, _ := d.call(t, "GET", "/healthz", ""); code != 200 {
		t.Errorf("GET /healthz = %d, want 200", code)
	}
	if code, _ := d.call(t, "GET", "/readyz", ""); code != 503 {
		t.Errorf("GET /readyz before any apply = %d, want 503", code)
	}

	// Token enforcement on the mutating endpoint.
	for _, tok := range []string{"", "wrong", testToken + "x"} {
		if code, _ := d.call(t, "POST", "/api/v1/reconcile?wait=1", tok); code != 401 {
			t.Errorf("POST /api/v1/reconcile with token %q = %d, want 401", tok, code)
		}
	}
	if d.rec.Ready() {
		t.Fatal("a refused reconcile request applied a revision")
	}
	if code, _ := d.call(t, "GET", "/api/v1/reconcile", testToken); code != 405 {
		t.Errorf("GET /api/v1/reconcile = %d, want 405", code)
	}
	if code, _ := d.call(t, "POST", "/api/v1/reconcile?wait=maybe", testToken); code != 400 {
		t.Errorf("POST /api/v1/reconcile?wait=maybe = %d, want 400", code)
	}
	code, body := d.call(t, "POST", "/api/v1/reconcile?wait=1", testToken)
	if code != 200 {
		t.Fatalf("POST /api/v1/reconcile?wait=1 = %d, want 200; body %s", code, body)
	}
	var att admin.AttemptDoc
	if err := json.Unmarshal(body, &att); err != nil {
		t.Fatal(err)
	}
	if att.Result != "applied" || att.Revision == "" {
		t.Errorf("reconcile attempt = %+v, want applied with a revision", att)
	}
	if code, body := d.call(t, "POST", "/api/v1/reconcile", testToken); code != 202 || !bytes.Contains(body, []byte(`"triggered"`)) {
		t.Errorf("POST /api/v1/reconcile = %d %s, want 202 triggered", code, body)
	}
	if code, _ := d.call(t, "GET", "/readyz", ""); code != 200 {
		t.Errorf("GET /readyz after apply = %d, want 200", code)
	}

	t.Run("status", func(t *testing.T) {
		code, body := d.call(t, "GET", "/api/v1/status", "")
		if code != 200 {
			t.Fatalf("GET /api/v1/status = %d", code)
		}
		var raw map[string]any
		if err := json.Unmarshal(body, &raw); err != nil {
			t.Fatal(err)
		}
		want := []string{"applied", "degraded", "entities", "expiring", "last_attempt", "plan", "ready", "source"}
		if diff := cmp.Diff(want, slices.Sorted(maps.Keys(raw))); diff != "" {
			t.Errorf("status keys (-want +got):\n%s", diff)
		}
		var st admin.StatusDoc
		if err := json.Unmarshal(body, &st); err != nil {
			t.Fatal(err)
		}
		if !st.Ready || st.Entities != 3 || st.Applied == nil || st.Applied.Revision != att.Revision || st.LastAttempt == nil {
			t.Errorf("status = %s, want ready, 3 entities, applied %s", body, att.Revision)
		}
		if st.Plan == nil || st.Plan.Create != 3 {
			t.Errorf("status plan = %+v, want 3 created", st.Plan)
		}
	})

	t.Run("ssls", func(t *testing.T) {
		code, body := d.call(t, "GET", "/api/v1/ssls", "")
		if code != 200 {
			t.Fatalf("GET /api/v1/ssls = %d", code)
		}
		var docs []plan.EntityInfo
		if err := json.Unmarshal(body, &docs); err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, d := range docs {
			names = append(names, d.Name)
		}
		if diff := cmp.Diff([]string{"api", "shop", "upstream"}, names); diff != "" {
			t.Errorf("GET /api/v1/ssls names (-want +got):\n%s", diff)
		}
		var raw []map[string]any
		json.Unmarshal(body, &raw)
		wantKeys := []string{"chains", "client_ca", "file", "labels", "name", "snis", "ssl_protocols", "type"}
		for _, r := range raw {
			if diff := cmp.Diff(wantKeys, slices.Sorted(maps.Keys(r))); diff != "" {
				t.Errorf("entity %v keys (-want +got):\n%s", r["name"], diff)
			}
		}
		chainKeys := []string{"fingerprint_sha256", "issuer", "key_type", "not_after", "not_before", "public_key_sha256", "sans", "serial", "subject"}
		chain := raw[1]["chains"].([]any)[0].(map[string]any)
		if diff := cmp.Diff(chainKeys, slices.Sorted(maps.Keys(chain))); diff != "" {
			t.Errorf("chain keys (-want +got):\n%s", diff)
		}
	})

	t.Run("ssl by name", func(t *testing.T) {
		code, body := d.call(t, "GET", "/api/v1/ssls/shop", "")
		if code != 200 {
			t.Fatalf("GET /api/v1/ssls/shop = %d", code)
		}
		var doc plan.EntityInfo
		if err := json.Unmarshal(body, &doc); err != nil {
			t.Fatal(err)
		}
		fp := sha256.Sum256(d.shop.Cert.Raw)
		spki, _ := x509.MarshalPKIXPublicKey(d.shop.Key.Public())
		pk := sha256.Sum256(spki)
		want := plan.EntityInfo{
			Name: "shop", Type: "server", File: "shop.yaml",
			SNIs: []string{"shop.test", "www.shop.test"}, Labels: map[string]string{"team": "web"},
			Protocols: []string{}, ClientCA: []plan.ChainInfo{},
			Chains: []plan.ChainInfo{{
				Subject: d.shop.Cert.Subject.String(), SANs: []string{"shop.test", "www.shop.test"},
				Serial: d.shop.Cert.SerialNumber.Text(16), NotBefore: d.shop.Cert.NotBefore.UTC(), NotAfter: d.shop.Cert.NotAfter.UTC(),
				KeyType: "ECDSA P-256", Fingerprint: hex.EncodeToString(fp[:]), PublicKeyFingerprint: hex.EncodeToString(pk[:]),
				Issuer: d.shop.Cert.Issuer.String(),
			}},
		}
		if diff := cmp.Diff(want, doc); diff != "" {
			t.Errorf("GET /api/v1/ssls/shop (-want +got):\n%s", diff)
		}
		if code, body := d.call(t, "GET", "/api/v1/ssls/nope", ""); code != 404 || !bytes.Contains(body, []byte(`"error"`)) {
			t.Errorf("GET /api/v1/ssls/nope = %d %s, want 404 with an error", code, body)
		}
	})

	t.Run("metrics after a reconcile and handshakes", func(t *testing.T) {
		roots := x509.NewCertPool()
		roots.AddCert(d.ca.Cert)
		conn, err := tls.Dial("tcp", d.gateway, &tls.Config{ServerName: "shop.test", RootCAs: roots})
		if err != nil {
			t.Fatalf("handshake with shop.test: %v", err)
		}
		conn.Close()
		if conn, err := tls.Dial("tcp", d.gateway, &tls.Config{ServerName: "unknown.test", RootCAs: roots}); err == nil {
			conn.Close()
			t.Fatal("handshake with an unknown name succeeded without a default certificate")
		}
		// The server counts a handshake when its side finishes, which may
		// be just after the client's; wait for both to be counted.
		var families map[string]*dto.MetricFamily
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			families = scrape(t, d)
			if value(families, "certops_tls_handshakes_total", "result", "ok") >= 1 &&
				value(families, "certops_tls_handshakes_total", "result", "no_certificate") >= 1 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("handshakes not counted: ok=%v no_certificate=%v",
					value(families, "certops_tls_handshakes_total", "result", "ok"),
					value(families, "certops_tls_handshakes_total", "result", "no_certificate"))
			}
		}
		checks := []struct {
			name, label, labelValue string
			want                    float64 // -1: present with any value
		}{
			{"certops_reconcile_total", "result", "applied", 1},
			{"certops_applied_revision_info", "revision", att.Revision, 1},
			{"certops_last_applied_timestamp_seconds", "", "", -1},
			{"certops_entities", "type", "server", 2},
			{"certops_entities", "type", "client", 1},
			{"certops_certificate_not_after_timestamp_seconds", "entity", "shop", float64(d.shop.Cert.NotAfter.Unix())},
			{"certops_webhook_requests_total", "", "", -2}, // no webhook yet: family absent
			{"go_goroutines", "", "", -1},
			{"process_cpu_seconds_total", "", "", -1},
		}
		for _, c := range checks {
			got := value(families, c.name, c.label, c.labelValue)
			switch {
			case c.want == -2 && got != -1:
				t.Errorf("%s present before any webhook", c.name)
			case c.want == -1 && got < 0:
				t.Errorf("%s{%s=%q} absent", c.name, c.label, c.labelValue)
			case c.want >= 0 && got != c.want:
				t.Errorf("%s{%s=%q} = %v, want %v", c.name, c.label, c.labelValue, got, c.want)
			}
		}
		if h := families["certops_reconcile_duration_seconds"]; h == nil || len(h.GetMetric()) == 0 {
			t.Errorf("certops_reconcile_duration_seconds has no phase after a reconcile")
		} else {
			for _, m := range h.GetMetric() {
				if m.GetHistogram().GetSampleCount() < 1 {
					t.Errorf("certops_reconcile_duration_seconds %v has no sample", m.GetLabel())
				}
			}
		}
		api := value(families, "certops_certificate_not_after_timestamp_seconds", "entity", "api")
		if api <= 0 {
			t.Errorf("certops_certificate_not_after_timestamp_seconds{entity=api} absent")
		}
	})
}

// scrape fetches and parses the daemon's /metrics, checking it for keys.
func scrape(t *testing.T, d *daemon) map[string]*dto.MetricFamily {
	t.Helper()
	code, body := d.call(t, "GET", "/metrics", "")
	if code != 200 {
		t.Fatalf("GET /metrics = %d", code)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	families, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return families
}

// value returns the value of the first sample of name whose label has
// labelValue (any sample when label is ""), or -1.
func value(families map[string]*dto.MetricFamily, name, label, labelValue string) float64 {
	mf := families[name]
	if mf == nil {
		return -1
	}
	for _, m := range mf.GetMetric() {
		ok := label == ""
		for _, lp := range m.GetLabel() {
			if lp.GetName() == label && lp.GetValue() == labelValue {
				ok = true
			}
		}
		if !ok {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Untyped != nil:
			return m.Untyped.GetValue()
		}
		return 0
	}
	return -1
}

func TestCheckAddress(t *testing.T) {
	tests := []struct {
		addr    string
		token   string
		wantErr bool
	}{
		{"127.0.0.1:9180", "", false},
		{"[::1]:9180", "", false},
		{"localhost:9180", "", false},
		{":9180", "", true},
		{"0.0.0.0:9180", "", true},
		{"[::]:9180", "", true},
		{"10.1.2.3:9180", "", true},
		{"admin.example.com:9180", "", true},
		{":9180", "t", false},
		{"10.1.2.3:9180", "t", false},
		{"no-port", "t", true},
	}
	for _, tt := range tests {
		t.Run(tt.addr+"/"+tt.token, func(t *testing.T) {
			err := admin.CheckAddress(tt.addr, []byte(tt.token))
			if (err != nil) != tt.wantErr {
				t.Errorf("CheckAddress(%q, %q) = %v, want error %v", tt.addr, tt.token, err, tt.wantErr)
			}
		})
	}
}

func TestReadSecretFile(t *testing.T) {
	dir := fixtures.WriteFiles(t, map[string]string{"ok": "  tok3n \n", "blank": " \n\t"})
	got, err := admin.ReadSecretFile(dir + "/ok")
	if err != nil || string(got) != "tok3n" {
		t.Errorf("ReadSecretFile(ok) = %q, %v, want \"tok3n\"", got, err)
	}
	if _, err := admin.ReadSecretFile(dir + "/blank"); err == nil {
		t.Errorf("ReadSecretFile(blank) succeeded, want an error")
	}
	if _, err := admin.ReadSecretFile(dir + "/missing"); err == nil {
		t.Errorf("ReadSecretFile(missing) succeeded, want an error")
	}
}

// TestWebhookTriggersRealReconcile checks that a valid push reaches the
// real reconciler: once the first revision is applied, a webhook makes the
// Run loop reconcile again (unchanged, the source being fixed).
func TestWebhookTriggersRealReconcile(t *testing.T) {
	d := startDaemon(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- d.rec.Run(ctx) }()
	defer func() { cancel(); <-done }()
	for deadline := time.Now().Add(10 * time.Second); !d.rec.Ready(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("Run applied no revision")
		}
	}
	if v := value(scrape(t, d), "certops_reconcile_total", "result", "unchanged"); v != 0 {
		t.Fatalf("certops_reconcile_total{result=unchanged} = %v before the webhook, want 0", v)
	}
	body := `{"ref":"refs/heads/main"}`
	req, _ := http.NewRequestWithContext(t.Context(), "POST", d.api.URL+"/hooks/gitlab", strings.NewReader(body))
	req.Header.Set("X-Gitlab-Event", "Push Hook")
	req.Header.Set("X-Gitlab-Token", "hook")
	resp, err := d.api.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 202 {
		t.Fatalf("POST /hooks/gitlab = %d, want 202", resp.StatusCode)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		f := scrape(t, d)
		if value(f, "certops_reconcile_total", "result", "unchanged") >= 1 {
			if v := value(f, "certops_webhook_requests_total", "result", "triggered"); v != 1 {
				t.Errorf("certops_webhook_requests_total{result=triggered} = %v, want 1", v)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the webhook did not cause a reconcile")
		}
	}
}
