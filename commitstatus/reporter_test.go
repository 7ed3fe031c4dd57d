package commitstatus_test

import (
	"context"
	"sync"
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
