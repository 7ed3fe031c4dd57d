package reconciler

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"certops/gateway"
	"certops/schema"
	"certops/source"
)

// clockOrigin is an Origin for the time-driven tests: it records when it
// is fetched and fails or returns a fixed empty tree. It fakes the source
// seam, not Git (Git is tested against real servers).
type clockOrigin struct {
	mu      sync.Mutex
	fetches []time.Time
	fail    bool
	block   chan struct{} // when non-nil, Fetch waits for it
}

func (o *clockOrigin) Fetch(ctx context.Context) (*source.Tree, error) {
	o.mu.Lock()
	o.fetches = append(o.fetches, time.Now())
	fail, block := o.fail, o.block
	o.mu.Unlock()
	if block != nil {
		select {
		case <-block:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if fail {
		return nil, errors.New("connection refused")
	}
	return source.NewTree("r1", nil, nil), nil
}

func (o *clockOrigin) String() string { return "clock" }

func (o *clockOrigin) times() []time.Time {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]time.Time(nil), o.fetches...)
}

// warmSchema initialises package schema's process-wide state (its CUE
// lanes and their channel) outside any synctest bubble: state created
// lazily inside a bubble would belong to it and fail every later user.
func warmSchema(t *testing.T) {
	t.Helper()
	if v, errs := schema.NewValidator(nil, schema.Options{}); v != nil && errs.Err() == nil {
		v.File("warm.yaml", []byte("name: warm\n"))
	}
}

type countingGateway struct {
	mu      sync.Mutex
	applies int
}

func (g *countingGateway) Apply(gateway.Config) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.applies++
	return nil
}

func TestRetryBackoff(t *testing.T) {
	warmSchema(t)
	synctest.Test(t, func(t *testing.T) {
		o := &clockOrigin{fail: true}
		rec := New(Options{Source: o, Gateway: &countingGateway{}, Interval: time.Hour})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { rec.Run(ctx); close(done) }()
		time.Sleep(30 * time.Minute)
		cancel()
		<-done

		f := o.times()
		if len(f) < 10 {
			t.Fatalf("%d fetches in 30 minutes, want retries", len(f))
		}
		want := retryPolicy.Min
		for i := 1; i < len(f); i++ {
			gap := f[i].Sub(f[i-1])
			lo, hi := time.Duration(float64(want)*0.8), time.Duration(float64(want)*1.2)
			if gap < lo || gap > hi {
				t.Errorf("retry %d after %v, want %v ±20%%", i, gap, want)
			}
			want = min(want*2, retryPolicy.Max)
		}
		if rec.Ready() {
			t.Error("Ready without an apply")
		}
		if a := rec.Status().LastAttempt; a == nil || a.Result != ResultFailed {
			t.Errorf("last attempt = %+v, want failed", a)
		}
	})
}

func TestIntervalPolling(t *testing.T) {
	warmSchema(t)
	synctest.Test(t, func(t *testing.T) {
		o := &clockOrigin{}
		gw := &countingGateway{}
		rec := New(Options{Source: o, Gateway: gw, Interval: time.Minute})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { rec.Run(ctx); close(done) }()
		time.Sleep(10*time.Minute + time.Second)
		cancel()
		<-done

		f := o.times()
		if len(f) < 9 || len(f) > 13 {
			t.Errorf("%d fetches in 10 minutes at a 1m interval", len(f))
		}
		for i := 1; i < len(f); i++ {
			if gap := f[i].Sub(f[i-1]); gap < 54*time.Second || gap > 66*time.Second {
				t.Errorf("poll %d after %v, want 1m ±10%%", i, gap)
			}
		}
		// The revision never changed: one apply, then no-ops.
		if gw.applies != 1 {
			t.Errorf("%d applies, want 1", gw.applies)
		}
		if !rec.Ready() {
			t.Error("not Ready")
		}
	})
}

func TestCoalescing(t *testing.T) {
	warmSchema(t)
	synctest.Test(t, func(t *testing.T) {
		block := make(chan struct{})
		o := &clockOrigin{block: block}
		rec := New(Options{Source: o, Gateway: &countingGateway{}})

		var wg sync.WaitGroup
		results := make([]*Attempt, 6)
		wg.Go(func() { results[0], _ = rec.ReconcileNow(t.Context()) })
		synctest.Wait() // the first run is fetching
		for i := 1; i < len(results); i++ {
			wg.Go(func() { results[i], _ = rec.ReconcileNow(t.Context()) })
		}
		synctest.Wait() // the others wait for one more run
		close(block)
		wg.Wait()

		if n := len(o.times()); n != 2 {
			t.Errorf("%d fetches for 6 concurrent calls, want 2 (one run and one coalesced)", n)
		}
		for i := 2; i < len(results); i++ {
			if results[i] != results[1] {
				t.Errorf("call %d got another attempt than call 1: the calls did not join one run", i)
			}
		}
		wantResult(t, results[0], ResultApplied)
		wantResult(t, results[1], ResultUnchanged)
	})
}

func TestTriggerCoalesces(t *testing.T) {
	warmSchema(t)
	synctest.Test(t, func(t *testing.T) {
		block := make(chan struct{})
		o := &clockOrigin{block: block}
		rec := New(Options{Source: o, Gateway: &countingGateway{}})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { rec.Run(ctx); close(done) }()
		synctest.Wait() // the start-up run is fetching
		for range 10 {
			rec.Trigger() // never blocks
		}
		close(block)
		synctest.Wait()
		cancel()
		<-done
		if n := len(o.times()); n != 2 {
			t.Errorf("%d fetches for a start and 10 triggers during it, want 2", n)
		}
	})
}

func TestReconcileNowCancelled(t *testing.T) {
	warmSchema(t)
	synctest.Test(t, func(t *testing.T) {
		block := make(chan struct{})
		o := &clockOrigin{block: block}
		rec := New(Options{Source: o, Gateway: &countingGateway{}})
		go rec.ReconcileNow(t.Context())
		synctest.Wait()
		ctx, cancel := context.WithCancel(t.Context())
		errc := make(chan error)
		go func() { _, err := rec.ReconcileNow(ctx); errc <- err }()
		synctest.Wait()
		cancel()
		if err := <-errc; !errors.Is(err, context.Canceled) {
			t.Errorf("ReconcileNow after cancel = %v, want context.Canceled", err)
		}
		close(block)
	})
}

type panicGateway struct{}

func (panicGateway) Apply(gateway.Config) error { panic("bug") }

func TestPanicIsAFailedAttempt(t *testing.T) {
	rec := New(Options{Source: &clockOrigin{}, Gateway: panicGateway{}})
	att := reconcileNow(t, rec)
	wantResult(t, att, ResultFailed)
	if rec.Ready() {
		t.Error("Ready after a panicked apply")
	}
	// The reconciler is still usable.
	wantResult(t, reconcileNow(t, rec), ResultFailed)
}
