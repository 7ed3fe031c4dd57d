package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"certops/fixtures"
	"certops/fleet"
	"certops/internal/backoff"
	"certops/reconciler"
	"certops/reconciler/admin"
	"certops/source"
)

// lockedBuffer is a log destination safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestPublishRefusesLiteralKeysWithoutDataKey: a revision with a literal
// private key, on a publisher without --data-key-file, is stalled like an
// invalid revision (DESIGN.md 9): the status names the file and field,
// the log says it once, the stalled counter counts it, nothing reaches
// the bus, and it is not retried.
func TestPublishRefusesLiteralKeysWithoutDataKey(t *testing.T) {
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("embedded nats-server did not start")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	conn, err := fleet.Connect(fleet.ConnOptions{URLs: []string{ns.ClientURL()}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(conn.Close)
	fl, err := fleet.Open(conn, "prod", fleet.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := fl.Setup(t.Context()); err != nil {
		t.Fatal(err)
	}
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	pub, err := fl.NewPublisher(fleet.PublisherOptions{Signing: fleet.NewSigningKey(priv)})
	if err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	sink := &publishSink{pub: pub, fleet: fl, election: fl.NewElection("p1"), log: log}

	ca := fixtures.NewRootCA(t, "publish CA")
	dir := t.TempDir()
	yaml := fixtures.EntityYAML(fixtures.Entity{Name: "one", SNIs: []string{"one.example.test"}, Chains: []*fixtures.Leaf{ca.Server(t, "one.example.test")}})
	if err := os.WriteFile(filepath.Join(dir, "one.yaml"), []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	src, err := source.NewDir(dir, log)
	if err != nil {
		t.Fatal(err)
	}
	metrics := admin.NewMetrics()
	rec := reconciler.New(reconciler.Options{Source: src, Gateway: noGateway{}, Sinks: []reconciler.Sink{sink},
		Observe: metrics.ObserveRun, Logger: log})

	var logged int
	for i := range 3 {
		att, err := rec.ReconcileNow(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if att.Result != reconciler.ResultStalled {
			t.Fatalf("reconcile %d: result %s, want stalled; errors %v", i, att.Result, att.Errors)
		}
		if len(att.Errors) != 1 || att.Errors[0].File != "one.yaml" || att.Errors[0].Field != "key" ||
			!strings.Contains(att.Errors[0].Msg, "--data-key-file") {
			t.Errorf("reconcile %d: errors %v, want one at one.yaml, field key, naming --data-key-file", i, att.Errors)
		}
		n := strings.Count(logs.String(), "revision refused")
		if i == 0 && n == 0 {
			t.Errorf("reconcile %d: nothing logged, want the refusal", i)
		}
		if i > 0 && n != logged {
			t.Errorf("reconcile %d: %d refusal lines, want %d (logged once)", i, n, logged)
		}
		logged = n
	}
	if strings.Contains(logs.String(), "BEGIN") {
		t.Error("the log holds PEM text")
	}
	for result, want := range map[string]float64{"stalled": 3, "failed": 0, "applied": 0} {
		if got := metricValue(t, metrics, "certops_reconcile_total", result); got != want {
			t.Errorf("certops_reconcile_total{result=%q} = %v, want %v", result, got, want)
		}
	}
	st, err := fl.Status(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.Head.Sequence != 0 || pub.Last() != nil {
		t.Errorf("head at sequence %d, last published %v; want nothing published", st.Head.Sequence, pub.Last())
	}
	if f := sink.statusFields(); f["publish_error"] == nil {
		t.Errorf("status fields %v, want publish_error", f)
	}
}

// metricValue scrapes /metrics and returns the sample name{result=...},
// or -1 when it is absent.
func metricValue(t *testing.T, m *admin.Metrics, name, result string) float64 {
	t.Helper()
	w := httptest.NewRecorder()
	m.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	prefix := name + `{result="` + result + `"} `
	for line := range strings.SplitSeq(w.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, prefix); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatalf("%s: %v", line, err)
			}
			return f
		}
	}
	return -1
}

// flakyPublisher fails its first fails calls, as a publish while the
// fleet's streams elect their leaders (one NATS server killed).
type flakyPublisher struct {
	mu    sync.Mutex
	fails int
	calls []string // the revision of each call
	last  *fleet.Published
}

func (p *flakyPublisher) Publish(_ context.Context, revision string, ents []fleet.Entity) (*fleet.Published, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, revision)
	if len(p.calls) <= p.fails {
		return nil, context.DeadlineExceeded
	}
	p.last = &fleet.Published{Revision: revision, Entities: len(ents)}
	return p.last, nil
}

func (p *flakyPublisher) Last() *fleet.Published {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last
}

func (p *flakyPublisher) callCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.calls)
}

// fixedRole is an election whose outcome the test sets.
type fixedRole struct{ leader atomic.Bool }

func (r *fixedRole) Role() fleet.Role {
	if r.leader.Load() {
		return fleet.RoleLeader
	}
	return fleet.RoleStandby
}

// TestPublishOnTakingTheLeadRetries: a standby takes each revision
// without error (the reconciler does not hand it again), so when the
// first publish after taking the lead fails, the sink retries it itself
// until it is published; it stops retrying when the lead is lost, and a
// new lead publishes it.
func TestPublishOnTakingTheLeadRetries(t *testing.T) {
	defer func(p backoff.Policy) { publishRetry = p }(publishRetry)
	publishRetry = backoff.Policy{Min: 10 * time.Millisecond, Max: 10 * time.Millisecond}
	var logs lockedBuffer
	newSink := func(fails int) (*publishSink, *flakyPublisher, *fixedRole) {
		pub, role := &flakyPublisher{fails: fails}, &fixedRole{}
		return &publishSink{pub: pub, election: role, log: slog.New(slog.NewTextHandler(&logs, nil)), sealing: true}, pub, role
	}
	rev := &reconciler.AppliedRevision{Revision: "c0ffee"}

	t.Run("retried until published", func(t *testing.T) {
		sink, pub, role := newSink(3)
		if err := sink.Apply(t.Context(), rev); err != nil {
			t.Fatalf("standby Apply = %v, want nil", err)
		}
		if n := pub.callCount(); n != 0 {
			t.Fatalf("a standby published %d times", n)
		}
		role.leader.Store(true)
		sink.roleChanged(t.Context(), nil) // returns once published
		if pub.callCount() != 4 || pub.Last() == nil || pub.Last().Revision != rev.Revision {
			t.Errorf("after taking the lead: calls %v, last %+v; want 3 failures, then %s published", pub.calls, pub.Last(), rev.Revision)
		}
		if st := sink.statusFields(); st["publish_error"] != nil {
			t.Errorf("status %v still shows the error of a failed attempt", st)
		}
		if n := strings.Count(logs.String(), "cannot publish on taking the lead; retrying"); n != 3 {
			t.Errorf("%d retry lines logged, want 3:\n%s", n, logs.String())
		}
		// Taking the lead again publishes it once more (head may have
		// moved meanwhile; fleet.Publisher writes nothing when it did not),
		// and stops there.
		sink.roleChanged(t.Context(), nil)
		if n := pub.callCount(); n != 5 {
			t.Errorf("%d publish calls after the lead was taken again, want 5", n)
		}
	})

	t.Run("stops when the lead is lost", func(t *testing.T) {
		sink, pub, role := newSink(1 << 30)
		if err := sink.Apply(t.Context(), rev); err != nil {
			t.Fatal(err)
		}
		role.leader.Store(true)
		done := make(chan struct{})
		go func() { sink.roleChanged(t.Context(), nil); close(done) }()
		for pub.callCount() < 2 {
			time.Sleep(time.Millisecond)
		}
		role.leader.Store(false)
		sink.roleChanged(t.Context(), nil) // the election's call on losing the lead
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("the retries went on after the lead was lost")
		}
		n := pub.callCount()
		time.Sleep(50 * time.Millisecond)
		if m := pub.callCount(); m != n {
			t.Errorf("%d publish calls after the lead was lost, want none", m-n)
		}
	})
}
