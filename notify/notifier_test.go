package notify_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"certops/notify"
)

// inProcess is an http.RoundTripper that serves requests with a handler in
// the calling goroutine: no sockets, so testing/synctest's clock can run.
type inProcess struct{ h http.Handler }

func (p inProcess) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	p.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

// counting records the events it was sent.
type counting struct {
	mu     sync.Mutex
	events []string
}

func (c *counting) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.events = append(c.events, r.Header.Get("X-Certops-Event"))
}

func (c *counting) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.events)
}

func TestDuplicatesSuppressed(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := &counting{}
		n := notify.New(notify.Options{
			Targets:    []notify.Target{{Provider: &notify.Webhook{URL: "http://receiver.invalid/"}}},
			HTTPClient: &http.Client{Transport: inProcess{c}},
		})
		defer n.Shutdown(context.Background())
		send := func(m notify.Message, want int, when string) {
			t.Helper()
			n.Notify(m)
			synctest.Wait()
			if got := c.count(); got != want {
				t.Fatalf("%s: %d deliveries, want %d", when, got, want)
			}
		}
		send(stalled, 1, "first stalled")
		send(stalled, 1, "same stalled at once")
		time.Sleep(4 * time.Minute)
		send(stalled, 1, "same stalled after 4m")
		other := stalled
		other.Revision = "ffff"
		send(other, 2, "stalled at another revision")
		time.Sleep(notify.DefaultSuppress)
		send(stalled, 3, "same stalled after 5m more")

		expiring := notify.Message{Event: notify.EventExpiring, Entity: "shop", Certificate: "ab12", NotAfter: time.Now().Add(10 * 24 * time.Hour), Revision: "r1"}
		send(expiring, 4, "first expiring")
		time.Sleep(23 * time.Hour)
		expiring.Revision = "r2" // a new revision does not repeat the notice
		send(expiring, 4, "expiring after 23h")
		time.Sleep(time.Hour)
		send(expiring, 5, "expiring after 24h")
		renewed := expiring
		renewed.Certificate = "cd34" // another certificate of the entity
		send(renewed, 6, "renewed certificate")
		if s := n.Stats(); s.Suppressed != 3 || s.Sent != 6 {
			t.Errorf("Stats() = %+v, want 3 suppressed and 6 sent", s)
		}
	})
}

func TestEventFilter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		all, problems := &counting{}, &counting{}
		n := notify.New(notify.Options{Targets: []notify.Target{
			{Provider: &notify.Webhook{URL: "http://all.invalid/"}},
			{Provider: &notify.Webhook{URL: "http://problems.invalid/"}, Events: []notify.Event{notify.EventStalled, notify.EventFailed}},
		}, HTTPClient: &http.Client{Transport: inProcess{http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Host == "all.invalid" {
				all.ServeHTTP(w, r)
			} else {
				problems.ServeHTTP(w, r)
			}
		})}}})
		defer n.Shutdown(context.Background())
		for _, e := range notify.Events {
			n.Notify(notify.Message{Event: e})
		}
		synctest.Wait()
		if all.count() != len(notify.Events) || fmt.Sprint(problems.events) != "[stalled failed]" {
			t.Errorf("all got %v, filtered got %v; want every event and [stalled failed]", all.events, problems.events)
		}
	})
}

func TestRetriesWithBackoff(t *testing.T) {
	var attempts atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if attempts.Add(1) < 3 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	}))
	defer srv.Close()
	refused := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "invalid_payload", http.StatusBadRequest)
	}))
	defer refused.Close()

	var logs bytes.Buffer
	n := notify.New(notify.Options{
		Targets:      []notify.Target{{Provider: &notify.Slack{URL: srv.URL + "/services/T0/B0/SECRETPATH"}}, {Provider: &notify.Slack{URL: refused.URL + "/services/T0/B0/SECRETPATH"}}},
		RetryWaitMin: time.Millisecond, RetryWaitMax: 5 * time.Millisecond,
		Logger: newLogger(&logs),
	})
	n.Notify(stalled)
	if err := n.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := attempts.Load(); got != 3 {
		t.Errorf("attempts = %d, want 3 (two 503s retried)", got)
	}
	if s := n.Stats(); s.Sent != 1 || s.Failed != 1 {
		t.Errorf("Stats() = %+v, want 1 sent, 1 failed (400 is not retried)", s)
	}
	if !strings.Contains(logs.String(), "400 Bad Request") || strings.Contains(logs.String(), "SECRETPATH") {
		t.Errorf("logs = %s, want the refusal without the webhook path", logs.String())
	}
}

// TestDeadEndpointNeverBlocks: an endpoint that never answers costs the
// caller nothing, drops the oldest queued messages with a count, does not
// delay a healthy target, and Shutdown gives up on it when its context
// ends.
func TestDeadEndpointNeverBlocks(t *testing.T) {
	hang := make(chan struct{})
	dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-hang:
		case <-r.Context().Done():
		}
	}))
	defer dead.Close()
	defer close(hang)
	live, ch := receiver(t, http.StatusOK)

	const queue, sent = 3, 50
	var logs bytes.Buffer
	n := notify.New(notify.Options{
		Targets:   []notify.Target{{Provider: &notify.Webhook{URL: dead.URL}}, {Provider: &notify.Webhook{URL: live.URL}}},
		QueueSize: queue,
		Logger:    newLogger(&logs),
	})
	for i := range sent {
		n.Notify(notify.Message{Event: notify.EventApplied, Revision: fmt.Sprint(i)})
	}
	// The live target drains its queue as fast as it can; with a queue of
	// 3 it may drop some too, but it keeps delivering while the dead one
	// is stuck on its first request.
	got := next(t, ch)
	if len(got.Body) == 0 {
		t.Fatal("live target received an empty body")
	}
	if d := n.Stats().Dropped; d < sent-queue-1 {
		t.Errorf("Stats().Dropped = %d, want at least %d (the dead target's queue holds %d)", d, sent-queue-1, queue)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if err := n.Shutdown(ctx); err != context.DeadlineExceeded {
		t.Errorf("Shutdown with a dead endpoint = %v, want %v", err, context.DeadlineExceeded)
	}
	n.Notify(stalled) // after Shutdown: dropped, never blocks nor panics
	if !strings.Contains(logs.String(), "notification queue full") {
		t.Errorf("drops were not logged:\n%s", logs.String())
	}
}

func TestNilNotifier(t *testing.T) {
	var n *notify.Notifier
	n.Notify(stalled)
	if n.Stats() != (notify.Stats{}) || n.Shutdown(t.Context()) != nil {
		t.Error("a nil Notifier must do nothing")
	}
}

func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// BenchmarkNotifyExpiring is a reconcile of a large repository reporting
// 10,000 certificates already notified today: each call must stay cheap.
func BenchmarkNotifyExpiring(b *testing.B) {
	n := notify.New(notify.Options{Targets: []notify.Target{{Provider: &notify.Webhook{URL: "http://receiver.invalid/"}}},
		HTTPClient: &http.Client{Transport: inProcess{http.NotFoundHandler()}}})
	defer n.Shutdown(context.Background())
	msgs := make([]notify.Message, 10000)
	for i := range msgs {
		msgs[i] = notify.Message{Event: notify.EventExpiring, Entity: fmt.Sprint("e", i), Certificate: "c"}
		n.Notify(msgs[i])
	}
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		n.Notify(msgs[i%len(msgs)])
	}
}
