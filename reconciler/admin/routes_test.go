package admin

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// TestRoutes: Options.Routes are served by the admin handler, without the
// token the mutating endpoints ask for, and not by the webhook handler
// (an address the Git host reaches serves only webhooks and /healthz).
func TestRoutes(t *testing.T) {
	s := New(Options{Reconciler: &fakeRec{}, Token: []byte("secret"), Routes: map[string]http.Handler{
		"GET /examples/ca.crl": http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "crl") }),
	}})
	tests := []struct {
		name     string
		handler  http.Handler
		method   string
		wantCode int
		wantBody string
	}{
		{"admin GET", s.Handler(), http.MethodGet, http.StatusOK, "crl"},
		{"admin HEAD", s.Handler(), http.MethodHead, http.StatusOK, ""},
		{"admin POST", s.Handler(), http.MethodPost, http.StatusMethodNotAllowed, ""},
		{"webhook listener", s.WebhookHandler(), http.MethodGet, http.StatusNotFound, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			tt.handler.ServeHTTP(w, httptest.NewRequest(tt.method, "/examples/ca.crl", nil))
			if w.Code != tt.wantCode || (tt.wantBody != "" && w.Body.String() != tt.wantBody) {
				t.Errorf("%s /examples/ca.crl = %d %q, want %d %q", tt.method, w.Code, w.Body.String(), tt.wantCode, tt.wantBody)
			}
		})
	}
}
