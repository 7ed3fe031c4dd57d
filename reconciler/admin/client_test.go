package admin

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"certops/plan"
	"certops/reconciler"
)

func TestClient(t *testing.T) {
	rec := &fakeRec{ready: true, status: &reconciler.Status{Source: "src", Entities: 1},
		entities: []plan.EntityInfo{{Name: "shop", Type: "server", SNIs: []string{"shop.test"}}}}
	var gotAuth string
	h := New(Options{Reconciler: rec}).Handler()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		gotAuth = r.Header.Get("Authorization")
		h.ServeHTTP(w, r)
	}))
	defer ts.Close()

	c := &Client{Base: strings.TrimPrefix(ts.URL, "http://"), Token: "tok"}
	st, err := c.Status(t.Context())
	if err != nil || st.Source != "src" || !st.Ready || st.Entities != 1 {
		t.Errorf("Client.Status = %+v, %v", st, err)
	}
	if gotAuth != "Bearer tok" {
		t.Errorf("Authorization = %q, want the bearer token", gotAuth)
	}
	docs, err := (&Client{Base: ts.URL}).SSLs(t.Context())
	if err != nil || len(docs) != 1 || docs[0].Name != "shop" || docs[0].SNIs[0] != "shop.test" {
		t.Errorf("Client.SSLs = %+v, %v", docs, err)
	}

	errs := []struct {
		base, want string
	}{
		{"", "no address"},
		{"ftp://x", "scheme must be http or https"},
		{"http://", "no host"},
		{"http://user:hunter2@127.0.0.1:1", "connection refused"},
		{ts.URL + "/nope", "404"},
	}
	for _, tt := range errs {
		_, err := (&Client{Base: tt.base}).Status(t.Context())
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Client{Base: %q}.Status() error = %v, want one containing %q", tt.base, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("Client{Base: %q}.Status() error shows the password: %v", tt.base, err)
		}
	}
}

func TestObserveSecretFetch(t *testing.T) {
	m := NewMetrics()
	m.ObserveSecretFetch("vault", "ok")
	m.ObserveSecretFetch("vault", "ok")
	m.ObserveSecretFetch("aws", "error")
	if got := counterValue(t, m, "certops_secret_fetch_total", map[string]string{"provider": "vault", "result": "ok"}); got != 2 {
		t.Errorf("certops_secret_fetch_total{vault,ok} = %v, want 2", got)
	}
	if got := counterValue(t, m, "certops_secret_fetch_total", map[string]string{"provider": "aws", "result": "error"}); got != 1 {
		t.Errorf("certops_secret_fetch_total{aws,error} = %v, want 1", got)
	}
}
