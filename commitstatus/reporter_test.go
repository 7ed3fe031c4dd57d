package commitstatus_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"certops/commitstatus"
)

// recorder is a Poster that remembers what it was asked to post.
type recorder struct {
	mu    sync.Mutex
	posts []commitstatus.Status
}

func (r *recorder) Post(_ context.Context, st commitstatus.Status) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.posts = append(r.posts, st)
	return nil
}
func (r *recorder) String() string { return "recorder" }

func (r *recorder) descriptions() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var d []string
	for _, p := range r.posts {
		d = append(d, p.Description)
	}
	return d
}

// TestReporterThrottlesAFleet: 200 nodes report their convergence as it
// grows; the revision gets its first status at once, then at most one
// post per 10 s with the latest count, and nothing once it stops moving.
func TestReporterThrottlesAFleet(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rec := &recorder{}
		r := commitstatus.NewReporter(rec, 0, nil)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go r.Run(ctx)

		report := func(applied int) {
			r.Report(commitstatus.Status{SHA: sha, State: commitstatus.StateSuccess, Description: convergence(applied)})
		}
		report(1)
		synctest.Wait()
		if got := rec.descriptions(); len(got) != 1 || got[0] != "applied on 1/200 nodes" {
			t.Fatalf("after the first report: posts %q, want one at once", got)
		}
		// One node per 100 ms for 20 s: 199 reports.
		for applied := 2; applied <= 200; applied++ {
			time.Sleep(100 * time.Millisecond)
			report(applied)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		got := rec.descriptions()
		if len(got) > 4 || got[len(got)-1] != "applied on 200/200 nodes" {
			t.Errorf("posts %q, want at most 4 (one per 10 s) ending with 200/200", got)
		}
		n := len(got)
		report(200) // the same again: never re-posted
		time.Sleep(time.Minute)
		synctest.Wait()
		if len(rec.descriptions()) != n {
			t.Errorf("a repeated status was posted again: %q", rec.descriptions())
		}
		// A new revision posts at once, whatever the other one did.
		r.Report(commitstatus.Status{SHA: "ffff", State: commitstatus.StateFailure, Description: "shop.yaml:3: bad"})
		synctest.Wait()
		if d := rec.descriptions(); len(d) != n+1 || d[n] != "shop.yaml:3: bad" {
			t.Errorf("new revision: posts %q, want it posted at once", d)
		}
	})
}

func convergence(applied int) string { return commitstatus.Convergence(applied, 200) }

// gate is a Poster whose posts wait until hold is closed, and that fails
// the next fail posts.
type gate struct {
	recorder
	started chan struct{}
	hold    chan struct{}
	fail    atomic.Int32
}

func (g *gate) Post(ctx context.Context, st commitstatus.Status) error {
	g.started <- struct{}{}
	<-g.hold
	if g.fail.Add(-1) >= 0 {
		return context.DeadlineExceeded
	}
	return g.recorder.Post(ctx, st)
}

// TestReporterInFlight: a report equal to the status being posted is not
// posted again (the daemon reports the applied revision at every
// unchanged run); after a failed post, an equal report posts again.
func TestReporterInFlight(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		g := &gate{started: make(chan struct{}, 16), hold: make(chan struct{})}
		r := commitstatus.NewReporter(g, time.Millisecond, nil)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go r.Run(ctx)

		ok := commitstatus.Status{SHA: sha, State: commitstatus.StateSuccess, Description: "1 to create"}
		r.Report(ok)
		<-g.started
		r.Report(ok) // while the first is being posted
		close(g.hold)
		time.Sleep(time.Second)
		synctest.Wait()
		if got := g.descriptions(); len(got) != 1 {
			t.Fatalf("posts %q, want one: the equal report made during the post is dropped", got)
		}

		other := commitstatus.Status{SHA: "ffff", State: commitstatus.StateFailure, Description: "shop.yaml:3: bad"}
		g.fail.Store(1)
		r.Report(other)
		time.Sleep(time.Second)
		synctest.Wait()
		r.Report(other)
		time.Sleep(time.Second)
		synctest.Wait()
		if got := g.descriptions(); len(got) != 2 || got[1] != "shop.yaml:3: bad" {
			t.Errorf("posts %q, want the failed status posted again by its next report", got)
		}
	})
}
