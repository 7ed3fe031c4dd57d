package reconciler

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"certops/fixtures"
)

// TestRunningStatus: while a fetch hangs, the status shows the attempt in
// progress with its phase, and the log says the fetch is slow, again at
// every further SlowFetch (issue 16 item 3).
func TestRunningStatus(t *testing.T) {
	warmSchema(t)
	synctest.Test(t, func(t *testing.T) {
		block := make(chan struct{})
		o := &clockOrigin{block: block}
		var logs fixtures.SyncBuffer
		rec := New(Options{Source: o, Gateway: &countingGateway{}, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if st := rec.Status(); st.Running != nil {
			t.Fatalf("Status().Running = %+v before any run, want nil", st.Running)
		}
		start := time.Now()
		done := make(chan *Attempt)
		go func() { att, _ := rec.ReconcileNow(t.Context()); done <- att }()
		time.Sleep(25 * time.Second)
		synctest.Wait()
		st := rec.Status()
		if st.Running == nil || st.Running.Phase != PhaseFetch || !st.Running.Since.Equal(start) {
			t.Errorf("Status().Running = %+v during a hung fetch, want phase fetch since %v", st.Running, start)
		}
		if n := strings.Count(logs.String(), "fetch is slow"); n != 2 {
			t.Errorf("%d slow-fetch log lines after 25s at a 10s threshold, want 2:\n%s", n, logs.String())
		}
		close(block)
		wantResult(t, <-done, ResultApplied)
		if st := rec.Status(); st.Running != nil {
			t.Errorf("Status().Running = %+v after the run, want nil", st.Running)
		}
		if n := strings.Count(logs.String(), "fetch is slow"); n != 2 {
			t.Errorf("%d slow-fetch log lines after the fetch ended, want still 2", n)
		}
	})
}

// TestBackoffSlowsPolling: with the source down and a short interval, the
// next poll waits for the backoff, not the interval; a trigger still runs
// at once (issue 16 item 4).
func TestBackoffSlowsPolling(t *testing.T) {
	warmSchema(t)
	synctest.Test(t, func(t *testing.T) {
		o := &clockOrigin{fail: true}
		rec := New(Options{Source: o, Gateway: &countingGateway{}, Interval: 2 * time.Second})
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() { rec.Run(ctx); close(done) }()
		time.Sleep(20 * time.Minute)
		synctest.Wait()

		f := o.times()
		// 1s, 2s, 4s, ... 256s, then 300s: about 12 attempts in 20
		// minutes, where a 2s poll would make 600.
		if len(f) < 8 || len(f) > 16 {
			t.Errorf("%d fetches in 20 minutes with the source down, want the backoff's ~12", len(f))
		}
		want := retryPolicy.Min
		for i := 1; i < len(f); i++ {
			gap := f[i].Sub(f[i-1])
			if lo := time.Duration(float64(want) * 0.8); gap < lo {
				t.Errorf("attempt %d after %v, want at least the backoff %v -20%%", i, gap, want)
			}
			want = min(want*2, retryPolicy.Max)
		}

		before := len(o.times())
		rec.Trigger()
		synctest.Wait()
		if got := len(o.times()); got != before+1 {
			t.Errorf("a trigger during the backoff made %d fetches, want 1 at once", got-before)
		}
		cancel()
		<-done
	})
}
