package admin

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"certops/reconciler"
	"certops/schema"
)

func TestReconcileWaitResults(t *testing.T) {
	tests := []struct {
		name     string
		attempt  *reconciler.Attempt
		err      error
		wantCode int
	}{
		{"applied", &reconciler.Attempt{Result: reconciler.ResultApplied, Revision: "abc"}, nil, 200},
		{"unchanged", &reconciler.Attempt{Result: reconciler.ResultUnchanged}, nil, 200},
		{"stalled", &reconciler.Attempt{Result: reconciler.ResultStalled, Errors: schema.ErrorList{{Pos: schema.Pos{File: "a.yaml", Line: 3, Col: 1}, Field: "cert", Msg: "expired"}}}, nil, 422},
		{"failed", &reconciler.Attempt{Result: reconciler.ResultFailed}, nil, 500},
		{"timeout", nil, context.DeadlineExceeded, 504},
		{"no attempt", nil, errors.New("boom"), 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Options{Reconciler: &fakeRec{attempt: tt.attempt, err: tt.err}})
			w := httptest.NewRecorder()
			s.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/api/v1/reconcile?wait=1", nil))
			if w.Code != tt.wantCode {
				t.Errorf("POST /api/v1/reconcile?wait=1 = %d, want %d; body %s", w.Code, tt.wantCode, w.Body)
			}
			if tt.attempt == nil {
				var e apiError
				if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Error == "" {
					t.Errorf("body %s is not an error document", w.Body)
				}
				return
			}
			var a AttemptDoc
			if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil {
				t.Fatal(err)
			}
			if a.Result != tt.attempt.Result.String() || len(a.Errors) != len(tt.attempt.Errors) {
				t.Errorf("attempt = %+v, want result %q with %d errors", a, tt.attempt.Result, len(tt.attempt.Errors))
			}
		})
	}
}

// TestStatusBeforeAnything checks the document of a daemon that has done
// nothing yet: lists are [] and absent objects null, never missing.
func TestStatusBeforeAnything(t *testing.T) {
	s := New(Options{Reconciler: &fakeRec{}})
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/api/v1/status", nil))
	want := `{
  "source": "",
  "ready": false,
  "applied": null,
  "last_attempt": null,
  "entities": 0,
  "degraded": [],
  "expiring": [],
  "plan": null
}
`
	if w.Code != 200 || w.Body.String() != want {
		t.Errorf("GET /api/v1/status = %d\n%s\nwant 200\n%s", w.Code, w.Body, want)
	}
	w = httptest.NewRecorder()
	s.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/api/v1/ssls", nil))
	if w.Code != 200 || w.Body.String() != "[]\n" {
		t.Errorf("GET /api/v1/ssls = %d %q, want 200 []", w.Code, w.Body)
	}
}

// TestStatusRunning: an attempt in progress shows as "running" with its
// start and phase (issue 16), and the document converts back for
// `certops status`.
func TestStatusRunning(t *testing.T) {
	since := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	rec := &fakeRec{status: &reconciler.Status{Source: "src", Running: &reconciler.Running{Since: since, Phase: reconciler.PhaseFetch}}}
	w := httptest.NewRecorder()
	New(Options{Reconciler: rec}).Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/api/v1/status", nil))
	var doc StatusDoc
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(w.Body.String(), `"running": {
    "since": "2026-11-27T12:00:00Z",
    "phase": "fetch"
  }`) {
		t.Errorf("GET /api/v1/status = %s, want running since 12:00 in phase fetch", w.Body)
	}
	if r := doc.Status().Running; r == nil || r.Phase != reconciler.PhaseFetch || !r.Since.Equal(since) {
		t.Errorf("StatusDoc.Status().Running = %+v, want fetch since %v", r, since)
	}
}

// TestStatusFields: Options.StatusFields adds top-level fields to the
// status document (a fleet node's, a publisher's) and never replaces the
// document's own.
func TestStatusFields(t *testing.T) {
	s := New(Options{Reconciler: &fakeRec{}, StatusFields: func() map[string]any {
		return map[string]any{"role": "leader", "ready": "overridden?"}
	}})
	w := httptest.NewRecorder()
	s.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/api/v1/status", nil))
	var doc map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
		t.Fatalf("GET /api/v1/status = %d %s: %v", w.Code, w.Body, err)
	}
	if doc["role"] != "leader" {
		t.Errorf(`status["role"] = %v, want "leader"`, doc["role"])
	}
	if doc["ready"] != false {
		t.Errorf(`status["ready"] = %v, want false (the document's own field wins)`, doc["ready"])
	}
	if _, ok := doc["degraded"]; !ok {
		t.Errorf("status lost its own fields: %s", w.Body)
	}
}
