package reconciler

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/fstest"

	"certops/fixtures"
	"certops/gateway"
	"certops/source"
)

type refusingGateway struct{}

func (refusingGateway) Apply(gateway.Config) error { return errors.New("snapshot refused") }

type failingSource struct{}

func (failingSource) Fetch(context.Context) (*source.Tree, error) {
	return nil, errors.New("connection refused")
}
func (failingSource) String() string { return "failing" }

// TestTypedOutcomes: each phase's failure is a typed error, the attempt's
// result follows from its type alone, and its cause reaches the status.
func TestTypedOutcomes(t *testing.T) {
	ca := fixtures.NewRootCA(t, "outcomes CA")
	good, _ := entity(t, ca, "shop", "shop.example.com")
	tests := []struct {
		name      string
		opts      Options
		result    Result
		phase     Phase
		stalled   bool
		recheck   bool
		wantInMsg string
	}{
		{"fetch fails", Options{Source: failingSource{}, Gateway: &countingGateway{}}, ResultFailed, PhaseFetch, false, false, "connection refused"},
		{"invalid file", Options{FS: fstest.MapFS{"bad.yaml": {Data: []byte("name: bad\ncert: 42\n")}}, Gateway: &countingGateway{}}, ResultStalled, PhaseLoad, true, false, "bad.yaml"},
		{"secret store down", Options{FS: fstest.MapFS{"ref.yaml": {Data: []byte(refEntity)}}, Gateway: &countingGateway{}, Secrets: &mapResolver{err: errors.New("vault sealed")}}, ResultFailed, PhaseResolve, false, false, "vault sealed"},
		{"resolved value invalid", Options{FS: fstest.MapFS{"ref.yaml": {Data: []byte(refEntity)}}, Gateway: &countingGateway{}, Secrets: &mapResolver{values: map[string]string{"$env://SHOP_CERT": "junk", "$secret://vault/kv/tls/shop/key": "junk"}}}, ResultStalled, PhaseResolve, true, true, "vault-shop"},
		{"gateway refuses", Options{FS: fstest.MapFS{"shop.yaml": {Data: []byte(good)}}, Gateway: refusingGateway{}}, ResultStalled, PhaseApply, true, false, "snapshot refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := New(tt.opts)
			att := reconcileNow(t, rec)
			wantResult(t, att, tt.result)
			var se *StalledError
			var re *RetryableError
			switch {
			case tt.stalled && errors.As(att.Err(), &se):
				if se.Phase != tt.phase || se.Recheck != tt.recheck {
					t.Errorf("Err() = StalledError{Phase: %s, Recheck: %v}, want phase %s, recheck %v", se.Phase, se.Recheck, tt.phase, tt.recheck)
				}
			case !tt.stalled && errors.As(att.Err(), &re):
				if re.Phase != tt.phase {
					t.Errorf("Err() = RetryableError{Phase: %s}, want phase %s", re.Phase, tt.phase)
				}
			default:
				t.Fatalf("Err() = %T %v, want a stalled=%v typed error", att.Err(), att.Err(), tt.stalled)
			}
			if got := problemsText(rec.Status().LastAttempt.Errors); !strings.Contains(got, tt.wantInMsg) {
				t.Errorf("status problems = %q, want the cause (%q)", got, tt.wantInMsg)
			}
		})
	}
	if err := (&Attempt{Result: ResultApplied}).Err(); err != nil {
		t.Errorf("Err() of an applied attempt = %v, want nil", err)
	}
}

// TestMassDeleteStalls: a plan deleting every running entity is refused
// in the plan phase and nothing is applied.
func TestMassDeleteStalls(t *testing.T) {
	ca := fixtures.NewRootCA(t, "mass CA")
	a, _ := entity(t, ca, "a", "a.example.com")
	b, _ := entity(t, ca, "b", "b.example.com")
	fsys := fstest.MapFS{"a.yaml": {Data: []byte(a)}, "b.yaml": {Data: []byte(b)}}
	gw := &countingGateway{}
	rec := New(Options{FS: fsys, Gateway: gw})
	wantResult(t, reconcileNow(t, rec), ResultApplied)
	delete(fsys, "a.yaml")
	delete(fsys, "b.yaml")
	fsys["README.md"] = &fstest.MapFile{Data: []byte("empty\n")}
	att := reconcileNow(t, rec)
	wantResult(t, att, ResultStalled)
	var se *StalledError
	if !errors.As(att.Err(), &se) || se.Phase != PhasePlan || !strings.Contains(problemsText(att.Errors), "refusing a plan that deletes 2 of 2") {
		t.Errorf("Err() = %v, errors %q; want a plan-phase refusal naming 2 of 2", att.Err(), problemsText(att.Errors))
	}
	if gw.applies != 1 || len(rec.Entities()) != 2 {
		t.Errorf("%d applies, %d entities after a refused mass delete; want 1 and 2", gw.applies, len(rec.Entities()))
	}
}
