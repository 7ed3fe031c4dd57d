package commitstatus

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// DefaultEvery is the least time between two posts for one revision.
const DefaultEvery = 10 * time.Second

// keepRevisions bounds how many revisions a Reporter remembers: older ones
// get no more updates.
const keepRevisions = 16

// Reporter throttles statuses in front of a Poster (see the package
// comment). Report never blocks. Run posts until its context ends.
type Reporter struct {
	poster Poster
	every  time.Duration
	log    *slog.Logger
	wake   chan struct{} // capacity 1

	mu    sync.Mutex // guards revs and order
	revs  map[string]*revision
	order []string // SHAs, oldest first
}

type revision struct {
	posted   *Status // last posted, or being posted; nil before the first post
	postedAt time.Time
	pending  *Status // newest report not yet posted
}

// NewReporter returns a Reporter posting through p at most once per every
// per revision (0 is DefaultEvery). Start it with Run.
func NewReporter(p Poster, every time.Duration, log *slog.Logger) *Reporter {
	if every <= 0 {
		every = DefaultEvery
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Reporter{poster: p, every: every, log: log, wake: make(chan struct{}, 1), revs: make(map[string]*revision)}
}

// Report records st as the revision's current status. It is posted at
// once if nothing was posted for the revision in the last period, else
// when the period ends, unless a newer report replaces it first. A report
// equal to the last posted one is dropped. Report on a nil Reporter does
// nothing.
func (r *Reporter) Report(st Status) {
	if r == nil || st.SHA == "" {
		return
	}
	r.mu.Lock()
	rev, ok := r.revs[st.SHA]
	if !ok {
		rev = &revision{}
		r.revs[st.SHA] = rev
		r.order = append(r.order, st.SHA)
		if len(r.order) > keepRevisions {
			delete(r.revs, r.order[0])
			r.order = r.order[1:]
		}
	}
	switch {
	case rev.posted != nil && *rev.posted == st:
		rev.pending = nil
	default:
		rev.pending = &st
	}
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run posts reports until ctx ends.
func (r *Reporter) Run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		next := r.flush(ctx)
		if !next.IsZero() {
			timer.Reset(time.Until(next))
		}
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
		case <-timer.C:
		}
	}
}

// flush posts every pending status whose period is over and returns when
// the next one is due (zero when none waits).
func (r *Reporter) flush(ctx context.Context) time.Time {
	for {
		st, prev, due := r.take()
		if st == nil {
			return due
		}
		err := r.poster.Post(ctx, *st)
		if err != nil {
			// The next report of the revision is compared with what was
			// posted before, so that an equal one posts again.
			r.mu.Lock()
			if rev, ok := r.revs[st.SHA]; ok && rev.posted == st {
				rev.posted = prev
			}
			r.mu.Unlock()
			// Not retried beyond the poster's own retries: the next
			// report of the revision posts again.
			r.log.Warn("commit status not posted", "poster", r.poster.String(), "revision", st.SHA, "state", string(st.State), "err", err)
		} else {
			r.log.Debug("commit status posted", "poster", r.poster.String(), "revision", st.SHA, "state", string(st.State), "description", st.Description)
		}
	}
}

// take removes one status that may be posted now and records it as
// posted, so that an equal report made while it is being posted is
// dropped; prev is what was posted before it. Else it returns when the
// earliest waiting one may be posted.
func (r *Reporter) take() (st, prev *Status, due time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := time.Now()
	for _, sha := range r.order {
		rev := r.revs[sha]
		if rev.pending == nil {
			continue
		}
		at := rev.postedAt.Add(r.every)
		if rev.postedAt.IsZero() || !now.Before(at) {
			st, prev = rev.pending, rev.posted
			rev.pending, rev.posted, rev.postedAt = nil, st, now
			return st, prev, time.Time{}
		}
		if due.IsZero() || at.Before(due) {
			due = at
		}
	}
	return nil, nil, due
}
