package reconciler_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"certops/fixtures"
	"certops/gateway"
	"certops/reconciler"
	"certops/source"
)

// memSource is a Source outside package source: a map of revisions kept
// in memory, with the Opener capability. It proves that a new kind of
// source (OCI, NATS) needs nothing unexported.
type memSource struct {
	mu        sync.Mutex
	revisions map[string]map[string]string // revision -> path -> content
	current   string
	fail      error
}

func (s *memSource) commit(rev string, files map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.revisions == nil {
		s.revisions = map[string]map[string]string{}
	}
	s.revisions[rev], s.current = files, rev
}

func (s *memSource) tree(rev string) (*source.Tree, error) {
	files, ok := s.revisions[rev]
	if !ok {
		return nil, fmt.Errorf("revision %s: not stored", rev)
	}
	ids := make(map[string]string, len(files))
	for p, c := range files {
		ids[p] = source.Digest(map[string]string{p: c})
	}
	return source.NewTree(rev, ids, func(name string) ([]byte, error) { return []byte(files[name]), nil }), nil
}

func (s *memSource) Fetch(context.Context) (*source.Tree, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail != nil {
		return nil, s.fail
	}
	return s.tree(s.current)
}

func (s *memSource) Open(_ context.Context, rev string) (*source.Tree, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tree(rev)
}

func (s *memSource) String() string { return "mem" }

var (
	_ source.Source = (*memSource)(nil)
	_ source.Opener = (*memSource)(nil)
)

// recordSink is a Sink that records the revisions it receives and fails
// while err is set.
type recordSink struct {
	mu   sync.Mutex
	got  []string
	ents []int
	err  error
}

func (s *recordSink) Apply(_ context.Context, rev *reconciler.AppliedRevision) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return s.err
	}
	s.got = append(s.got, rev.Revision)
	s.ents = append(s.ents, len(rev.Entities))
	return nil
}

func TestSourceOutsidePackage(t *testing.T) {
	ca := fixtures.NewRootCA(t, "seams CA")
	shop := ca.Server(t, "shop.example.com")
	src := &memSource{}
	src.commit("r1", map[string]string{"shop.yaml": fixtures.EntityYAML(fixtures.Entity{Name: "shop", SNIs: []string{"shop.example.com"}, Chains: []*fixtures.Leaf{shop}})})
	dataDir := t.TempDir()
	rec := reconciler.New(reconciler.Options{Source: src, Gateway: gateway.New(gateway.Options{}), DataDir: dataDir})
	att, err := rec.ReconcileNow(t.Context())
	if err != nil || att.Result != reconciler.ResultApplied || att.Revision != "r1" {
		t.Fatalf("ReconcileNow = %+v, %v; want r1 applied", att, err)
	}
	if got := rec.Entities(); len(got) != 1 || got[0].Name != "shop" {
		t.Errorf("Entities() = %+v, want shop", got)
	}

	// A restart with the source down restores r1 through Open.
	src.fail = errors.New("source down")
	rec2 := reconciler.New(reconciler.Options{Source: src, Gateway: gateway.New(gateway.Options{}), DataDir: dataDir})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { rec2.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	// Run restores, then fetches; the fetch fails.
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(10 * time.Millisecond) {
		if a := rec2.Status().LastAttempt; a != nil && a.Result == reconciler.ResultFailed {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no failed fetch after a restart with the source down; status %+v", rec2.Status())
		}
	}
	if st := rec2.Status(); st.Applied == nil || st.Applied.ID != "r1" || !rec2.Ready() {
		t.Errorf("after a restart with the source down: applied %+v, ready %v; want r1 restored", st.Applied, rec2.Ready())
	}
}

func TestSinks(t *testing.T) {
	ca := fixtures.NewRootCA(t, "sinks CA")
	src := &memSource{}
	yaml := func(name string) string {
		return fixtures.EntityYAML(fixtures.Entity{Name: name, SNIs: []string{name + ".example.com"}, Chains: []*fixtures.Leaf{ca.Server(t, name+".example.com")}})
	}
	src.commit("r1", map[string]string{"a.yaml": yaml("a")})
	first, second := &recordSink{}, &recordSink{}
	rec := reconciler.New(reconciler.Options{Source: src, Gateway: gateway.New(gateway.Options{}), Sinks: []reconciler.Sink{first, second}})
	reconcile := func(want reconciler.Result) *reconciler.Attempt {
		t.Helper()
		att, err := rec.ReconcileNow(t.Context())
		if err != nil || att.Result != want {
			t.Fatalf("ReconcileNow = %+v, %v; want %s", att, err, want)
		}
		return att
	}

	reconcile(reconciler.ResultApplied)
	reconcile(reconciler.ResultUnchanged)
	if fmt.Sprint(first.got, second.got) != "[r1] [r1]" {
		t.Errorf("sinks got %v and %v, want r1 once each", first.got, second.got)
	}

	// A sink that fails makes the attempt retryable; the gateway serves
	// the revision and the sink gets it on the next run.
	second.err = errors.New("bus down")
	src.commit("r2", map[string]string{"a.yaml": yaml("a"), "b.yaml": yaml("b")})
	att := reconcile(reconciler.ResultFailed)
	if len(att.Errors) != 1 || !strings.Contains(att.Errors[0].Msg, "bus down") {
		t.Errorf("attempt errors = %+v, want the sink's", att.Errors)
	}
	if st := rec.Status(); st.Applied == nil || st.Applied.ID != "r2" {
		t.Errorf("applied = %+v, want r2 (the gateway took it)", st.Applied)
	}
	second.err = nil
	reconcile(reconciler.ResultUnchanged)
	if fmt.Sprint(first.got, second.got) != "[r1 r2] [r1 r2]" || second.ents[1] != 2 {
		t.Errorf("sinks got %v and %v (entities %v), want r1 and r2 once each", first.got, second.got, second.ents)
	}
}
