package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"certops/commitstatus"
	"certops/notify"
	"certops/plan"
	"certops/reconciler"
	"certops/schema"
	"certops/trust"
)

// statusRecorder is a commitstatus.Poster that remembers its posts.
type statusRecorder struct {
	mu    sync.Mutex
	posts []commitstatus.Status
}

func (r *statusRecorder) Post(_ context.Context, st commitstatus.Status) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.posts = append(r.posts, st)
	return nil
}
func (r *statusRecorder) String() string { return "recorder" }

// TestFeedbackEvents feeds a sequence of reconcile outcomes and checks
// the events sent (through a real webhook receiver) and the statuses set.
func TestFeedbackEvents(t *testing.T) {
	events := make(chan notify.Message, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m notify.Message
		b, _ := io.ReadAll(r.Body)
		json.Unmarshal(b, &m)
		events <- m
	}))
	defer srv.Close()
	log := slog.New(slog.DiscardHandler)
	rec := &statusRecorder{}
	fb := &feedback{
		log:      log,
		notifier: notify.New(notify.Options{Targets: []notify.Target{{Provider: &notify.Webhook{URL: srv.URL}}}}),
		reporter: commitstatus.NewReporter(rec, time.Millisecond, log),
		degraded: map[string]bool{},
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- fb.run(ctx) }()

	const revA, revB = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	summary := &plan.Summary{Create: 1}
	applied := func(rev string, result reconciler.Result) *reconciler.Status {
		return &reconciler.Status{Source: "repo", Applied: &reconciler.Revision{ID: rev}, Plan: summary,
			LastAttempt: &reconciler.Attempt{Revision: rev, Result: result}}
	}
	stalled := &reconciler.Status{Source: "repo", Applied: &reconciler.Revision{ID: revA}, Plan: summary,
		LastAttempt: &reconciler.Attempt{Revision: revB, Result: reconciler.ResultStalled,
			Errors: schema.ErrorList{{Pos: schema.Pos{File: "shop.yaml", Line: 3}, Msg: "bad"}, {Pos: schema.Pos{File: "x.yaml", Line: 1}, Msg: "soon", Severity: schema.SeverityWarning}}}}
	degraded := applied(revA, reconciler.ResultUnchanged)
	degraded.Degraded = []reconciler.Degraded{{Entity: "shop", Reason: "vault unreachable"}}
	expiring := applied(revA, reconciler.ResultUnchanged)
	expiring.Expiring = []reconciler.ExpiringCert{{Entity: "api", Subject: "CN=api", NotAfter: time.Now().Add(48 * time.Hour)}}

	for _, st := range []*reconciler.Status{
		applied(revA, reconciler.ResultApplied),
		applied(revA, reconciler.ResultUnchanged), // nothing new
		stalled,
		stalled, // the same refusal again: told once
		applied(revA, reconciler.ResultUnchanged),
		degraded,
		applied(revA, reconciler.ResultUnchanged),
		expiring,
		expiring, // once per day
	} {
		fb.observe(st)
	}
	var got []string
	for len(got) < 6 {
		select {
		case m := <-events:
			s := string(m.Event) + " " + m.Entity
			if m.Event == notify.EventStalled && (len(m.Problems) != 1 || m.Problems[0].String() != "shop.yaml:3: bad") {
				t.Errorf("stalled problems = %v, want only the error with file:line", m.Problems)
			}
			got = append(got, strings.TrimSpace(s))
		case <-time.After(10 * time.Second):
			t.Fatalf("events so far %q, want 6", got)
		}
	}
	want := "[applied stalled recovered degraded shop recovered shop expiring api]"
	// Deliveries run in order on one target's queue.
	if g := "[" + strings.Join(got, " ") + "]"; g != want {
		t.Errorf("events = %s, want %s", g, want)
	}
	select {
	case m := <-events:
		t.Errorf("extra event %s %s", m.Event, m.Entity)
	case <-time.After(200 * time.Millisecond):
	}
	cancel()
	<-done

	rec.mu.Lock()
	defer rec.mu.Unlock()
	var states []string
	for _, p := range rec.posts {
		states = append(states, string(p.State)+" "+p.SHA[:1]+" "+p.Description)
	}
	wantStates := []string{"success a 1 to create, 0 to update, 0 to delete, 0 unchanged", "failure b shop.yaml:3: bad"}
	if len(states) < 2 || states[0] != wantStates[0] || states[1] != wantStates[1] {
		t.Errorf("statuses = %q, want %q first", states, wantStates)
	}
}

// TestFeedbackVerifiedMismatch: a proof that found a name serving another
// leaf sends one verified-mismatch event per name; a verified proof sends
// nothing.
func TestFeedbackVerifiedMismatch(t *testing.T) {
	events := make(chan notify.Message, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m notify.Message
		b, _ := io.ReadAll(r.Body)
		json.Unmarshal(b, &m)
		events <- m
	}))
	defer srv.Close()
	fb := &feedback{
		log:      slog.New(slog.DiscardHandler),
		notifier: notify.New(notify.Options{Targets: []notify.Target{{Provider: &notify.Webhook{URL: srv.URL}}}}),
		degraded: map[string]bool{},
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- fb.run(ctx) }()

	fb.proved(reconciler.Proof{Revision: "r1", Verified: true, Probes: 3})
	fb.proved(reconciler.Proof{Revision: "r2", Probes: 3, Mismatches: []reconciler.Mismatch{
		{Entity: "shop", SNI: "shop.test", Want: "aaaa", Got: "bbbb"},
	}})
	select {
	case m := <-events:
		if m.Event != notify.EventVerifiedMismatch || m.Entity != "shop" || m.Revision != "r2" || !strings.Contains(m.Summary, "shop.test") {
			t.Errorf("event = %+v, want verified-mismatch of shop at r2 naming shop.test", m)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no verified-mismatch event within 10s")
	}
	select {
	case m := <-events:
		t.Errorf("extra event %s %s (a verified proof sends nothing)", m.Event, m.Entity)
	case <-time.After(200 * time.Millisecond):
	}
	cancel()
	<-done
	var nilFeedback *feedback
	nilFeedback.proved(reconciler.Proof{}) // no feedback configured: nothing, no panic
}

func TestFeedbackFlagErrors(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		f    feedbackFlags
		src  string
		want string
	}{
		{"bad notify URL", feedbackFlags{notify: []string{"ftp://x/"}}, "", "--notify"},
		{"missing config", feedbackFlags{notifyConfig: dir + "/none.yaml"}, "", "--notify-config"},
		{"status without token", feedbackFlags{commitStatus: "github"}, "https://github.com/a/b", "--commit-status-token-file"},
		{"token without status", feedbackFlags{commitStatusTokenFile: "x"}, "", "go with --commit-status"},
		{"unknown host kind", feedbackFlags{commitStatus: "gitea", commitStatusTokenFile: writeTemp(t, dir, "t", "x")}, "https://g/a/b", "not github or gitlab"},
		{"repo not derivable", feedbackFlags{commitStatus: "github", commitStatusTokenFile: writeTemp(t, dir, "t", "x")}, "/srv/repo", "--commit-status-repo"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newFeedback(tt.f, tt.src, slog.New(slog.DiscardHandler))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("newFeedback(%s) = %v, want an error naming %s", tt.name, err, tt.want)
			}
		})
	}
	if fb, err := newFeedback(feedbackFlags{}, "", slog.New(slog.DiscardHandler)); fb != nil || err != nil {
		t.Errorf("newFeedback(no flags) = %v, %v, want nil, nil", fb, err)
	}
	for _, tt := range []struct {
		f    trustFlags
		want string
	}{
		{trustFlags{keys: dir}, "goes with --verify-signatures"},
		{trustFlags{mode: trust.ModeHead}, "needs --trusted-keys"},
		{trustFlags{mode: trust.ModeHead, keys: dir}, "no *.asc or *.sshpub key"},
	} {
		if _, err := tt.f.signatures(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("signatures(%+v) = %v, want %q", tt.f, err, tt.want)
		}
	}
}

func writeTemp(tb testing.TB, dir, name, content string) string {
	tb.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}

// TestFeedbackFleetConvergence: on a publisher the commit's status is the
// fleet's convergence ("applied on N/M nodes", pending until every node
// serves it, then success), never the publisher's own apply.
func TestFeedbackFleetConvergence(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	rec := &statusRecorder{}
	fb := &feedback{log: log, reporter: commitstatus.NewReporter(rec, time.Millisecond, log), degraded: map[string]bool{}, fleet: true}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error)
	go func() { done <- fb.run(ctx) }()

	const rev = "cccccccccccccccccccccccccccccccccccccccc"
	fb.observe(&reconciler.Status{Applied: &reconciler.Revision{ID: rev}, Plan: &plan.Summary{Update: 1},
		LastAttempt: &reconciler.Attempt{Revision: rev, Result: reconciler.ResultApplied}})
	fb.converged(rev, 1, 3)
	time.Sleep(20 * time.Millisecond) // one reporter period
	fb.converged(rev, 3, 3)
	fb.converged("not-a-commit", 3, 3) // a folder revision: no status

	want := []string{"pending applied on 1/3 nodes", "success applied on 3/3 nodes"}
	deadline := time.Now().Add(10 * time.Second)
	var got []string
	for time.Now().Before(deadline) {
		rec.mu.Lock()
		got = got[:0]
		for _, p := range rec.posts {
			got = append(got, string(p.State)+" "+p.Description)
		}
		rec.mu.Unlock()
		if len(got) >= len(want) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("statuses = %q, want %q (the publisher's own apply posts nothing)", got, want)
	}
}
