package report

import (
	"strings"
	"testing"
	"time"

	"certops/plan"
	"certops/reconciler"
	"certops/schema"
)

func TestStatusText(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	st := &reconciler.Status{
		Source:      "https://git.example.com/certs.git (main)",
		Applied:     &reconciler.Revision{ID: "0123456789abcdef0123456789abcdef01234567", Time: now.Add(-90 * time.Minute)},
		LastAttempt: &reconciler.Attempt{Revision: "fedcba9876543210fedcba9876543210fedcba98", Time: now.Add(-2 * time.Minute), Result: reconciler.ResultStalled, Errors: schema.ErrorList{{Pos: schema.Pos{File: "certs/shop.yaml", Line: 4, Col: 7}, Field: "cert", Msg: "the certificate has expired"}}},
		Entities:    42,
		Degraded: []reconciler.Degraded{{Entity: "vaulted", Reason: "vault: connection refused", Served: true},
			{Entity: "fresh", Reason: "not served: $env://FRESH_KEY: not set"}},
		Expiring: []reconciler.ExpiringCert{{Entity: "shop", Chain: 0, Subject: "CN=shop.example.com", NotAfter: now.Add(13 * 24 * time.Hour)}},
		Plan:     &plan.Summary{Create: 1, Update: 2, Unchanged: 39},
	}
	var b strings.Builder
	if err := Status(&b, st, true, now, false); err != nil {
		t.Fatal(err)
	}
	want := `Source:        https://git.example.com/certs.git (main)
Ready:         yes
Applied:       0123456789ab at 2026-11-27T10:30:00Z (1h ago)
Last attempt:  stalled of fedcba987654 at 2026-11-27T11:58:00Z (2m ago)
Entities:      42
Last plan:     1 created, 2 updated, 0 deleted, 39 unchanged
Expiring:      1 within the warning window
Degraded:      1 entity serves material that could not be brought up to date, 1 not served

Problems of the last attempt:
  certs/shop.yaml:4:7: cert: the certificate has expired

Expiring certificates:
  shop chain 0 (CN=shop.example.com): not after 2026-12-10T12:00:00Z (in 13d)

Degraded entities:
  vaulted: vault: connection refused
  fresh: not served: $env://FRESH_KEY: not set
`
	if b.String() != want {
		t.Errorf("Status =\n%s\nwant\n%s", b.String(), want)
	}
}

func TestStatusRunning(t *testing.T) {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	st := &reconciler.Status{Source: "src", Running: &reconciler.Running{Since: now.Add(-90 * time.Second), Phase: reconciler.PhaseFetch}}
	var b strings.Builder
	if err := Status(&b, st, false, now, false); err != nil {
		t.Fatal(err)
	}
	if want := "Running:       fetch since 2026-11-27T11:58:30Z (1m ago)\n"; !strings.Contains(b.String(), want) {
		t.Errorf("Status with an attempt in progress =\n%s\nwant a line %q", b.String(), want)
	}
}
