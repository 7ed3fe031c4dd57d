package admin

import (
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"certops/plan"
	"certops/reconciler"
)

// packedRec is fakeRec with its entities packed, as the real reconciler
// gives them (Describer).
type packedRec struct{ *fakeRec }

func (p packedRec) Descriptions() *plan.Set { return plan.NewSet(p.Entities()) }

var _ Describer = packedRec{}

// TestDescriberSameOutput: the state metrics and the SSL documents read
// from packed descriptions are the ones read from Entities, byte for byte.
func TestDescriberSameOutput(t *testing.T) {
	at := time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)
	entities := []plan.EntityInfo{
		{Name: "shop", Type: "server", SNIs: []string{"shop.test"}, Chains: []plan.ChainInfo{
			{Subject: "CN=shop.test", NotAfter: at, Fingerprint: strings.Repeat("ab", 32)},
			{Subject: "CN=shop.test", NotAfter: at.Add(time.Hour)}}},
		{Name: "ref", Type: "server", Chains: []plan.ChainInfo{{CertRef: "$env://CERT"}}}, // no expiry known
		{Name: "mtls", Type: "client", Labels: map[string]string{"team": "a"}, Chains: []plan.ChainInfo{{NotAfter: at}}},
		{Name: "bare", Type: "server"},
	}
	status := &reconciler.Status{Applied: &reconciler.Revision{ID: "abc", Time: at}}
	get := func(rec Reconciler, path string) string {
		w := httptest.NewRecorder()
		New(Options{Reconciler: rec, Metrics: NewMetrics()}).Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
		if path != "/metrics" {
			return w.Body.String()
		}
		var state []string
		for _, l := range strings.Split(w.Body.String(), "\n") {
			if strings.HasPrefix(l, "certops_certificate_not_after") || strings.HasPrefix(l, "certops_entities") {
				state = append(state, l)
			}
		}
		slices.Sort(state)
		return strings.Join(state, "\n")
	}
	plain := &fakeRec{status: status, entities: entities}
	packed := packedRec{&fakeRec{status: status, entities: entities}}
	for _, path := range []string{"/metrics", "/api/v1/ssls", "/api/v1/ssls/shop", "/api/v1/ssls/mtls", "/api/v1/ssls/none"} {
		want, got := get(plain, path), get(packed, path)
		if got != want {
			t.Errorf("GET %s packed =\n%s\nwant\n%s", path, got, want)
		}
		if path == "/metrics" && !strings.Contains(got, `certops_certificate_not_after_timestamp_seconds{chain="1",entity="shop"}`) {
			t.Errorf("GET /metrics = %s, want shop's chain 1", got)
		}
	}
}
