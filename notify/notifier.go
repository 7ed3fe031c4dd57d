package notify

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-retryablehttp"
)

// Target is a provider and the events it receives.
type Target struct {
	Provider Provider
	// Events filters what the target receives; nil or empty means every
	// event.
	Events []Event
}

func (t Target) wants(e Event) bool { return len(t.Events) == 0 || slices.Contains(t.Events, e) }

// Defaults of [Options].
const (
	// DefaultSuppress is how long an identical event is suppressed (Flux
	// notification-controller's default).
	DefaultSuppress = 5 * time.Minute
	// ExpiringEvery is how often an expiring event is sent per
	// certificate.
	ExpiringEvery = 24 * time.Hour
	// DefaultQueueSize bounds each target's queue: room for the expiring
	// notices of a large repository's first reconcile.
	DefaultQueueSize = 1000
)

// Options configure a Notifier.
type Options struct {
	Targets []Target
	Logger  *slog.Logger
	// Suppress is the duplicate-suppression window; 0 is DefaultSuppress.
	Suppress time.Duration
	// QueueSize bounds each target's queue; 0 is DefaultQueueSize.
	QueueSize int
	// HTTPClient sends the requests; nil is a client with a 10 s timeout
	// per attempt.
	HTTPClient *http.Client
	// RetryMax is the number of retries after the first attempt (0 is 4);
	// RetryWaitMin and RetryWaitMax bound the exponential backoff (0 is
	// 1 s and 30 s). A Retry-After header is honoured.
	RetryMax                   int
	RetryWaitMin, RetryWaitMax time.Duration
}

// Stats count what a Notifier did, over all targets.
type Stats struct {
	Sent       uint64 // deliveries answered 2xx
	Failed     uint64 // deliveries given up after retries, or refused
	Dropped    uint64 // messages pushed out of a full queue
	Suppressed uint64 // duplicates not sent
}

// Notifier delivers messages to targets in the background.
type Notifier struct {
	log      *slog.Logger
	suppress time.Duration
	targets  []*target
	ctx      context.Context // cancelled by Shutdown when its ctx ends
	cancel   context.CancelFunc
	wg       sync.WaitGroup

	mu     sync.Mutex           // guards recent and pruned
	recent map[string]time.Time // dedup key -> when it was last sent
	pruned time.Time            // when recent was last pruned

	sent, failed, suppressed atomic.Uint64
}

type target struct {
	Target
	q      *queue[Message]
	client *retryablehttp.Client
}

// New starts a Notifier: one delivery goroutine per target, stopped by
// Shutdown. A Notifier without targets does nothing.
func New(opts Options) *Notifier {
	n := &Notifier{log: opts.Logger, suppress: opts.Suppress, recent: make(map[string]time.Time)}
	if n.log == nil {
		n.log = slog.New(slog.DiscardHandler)
	}
	if n.suppress == 0 {
		n.suppress = DefaultSuppress
	}
	size := opts.QueueSize
	if size <= 0 {
		size = DefaultQueueSize
	}
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Second}
	}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	for _, t := range opts.Targets {
		tg := &target{Target: t, q: newQueue[Message](size)}
		tg.client = &retryablehttp.Client{
			HTTPClient:   hc,
			RetryMax:     orInt(opts.RetryMax, 4),
			RetryWaitMin: orDuration(opts.RetryWaitMin, time.Second),
			RetryWaitMax: orDuration(opts.RetryWaitMax, 30*time.Second),
			CheckRetry:   retryablehttp.DefaultRetryPolicy,
			Backoff:      retryablehttp.DefaultBackoff,
			// The last response or error comes back as it is, so a
			// refusal is reported with its status. No Logger: it would
			// print URLs, which are credentials for Slack and Teams.
			ErrorHandler: retryablehttp.PassthroughErrorHandler,
		}
		name := t.Provider.String()
		tg.client.RequestLogHook = func(_ retryablehttp.Logger, _ *http.Request, attempt int) {
			if attempt > 0 {
				n.log.Debug("notify: retrying", "provider", name, "attempt", attempt)
			}
		}
		n.targets = append(n.targets, tg)
		n.wg.Add(1)
		go n.run(tg)
	}
	return n
}

func orInt(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

func orDuration(v, def time.Duration) time.Duration {
	if v == 0 {
		return def
	}
	return v
}

// Notify queues m for every target that wants its event and returns at
// once. A duplicate of a message sent within the suppression window (for
// expiring events: of the same certificate within a day) is dropped and
// counted. Notify on a nil Notifier does nothing; after Shutdown it drops
// the message.
func (n *Notifier) Notify(m Message) {
	if n == nil || len(n.targets) == 0 {
		return
	}
	now := time.Now()
	m = m.sanitized(now)
	if !n.first(m, now) {
		n.suppressed.Add(1)
		n.log.Debug("notify: duplicate suppressed", "event", string(m.Event), "revision", m.Revision, "entity", m.Entity)
		return
	}
	for _, t := range n.targets {
		if !t.wants(m.Event) {
			continue
		}
		// The first drop and every 100th are logged: a dead endpoint
		// shows in the log without flooding it.
		if _, d := t.q.push(m); d == 1 || (d > 0 && d%100 == 0) {
			n.log.Warn("notification queue full; dropping the oldest messages", "provider", t.Provider.String(), "dropped", d)
		}
	}
}

// first reports whether m is not a duplicate, and records it.
func (n *Notifier) first(m Message, now time.Time) bool {
	key, window := dedupKey(m), n.suppress
	if m.Event == EventExpiring {
		window = ExpiringEvery
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	// Forget old keys once a minute, not on every call: a reconcile of a
	// large repository reports thousands of expiring certificates.
	if now.Sub(n.pruned) >= time.Minute {
		n.pruned = now
		for k, at := range n.recent {
			if now.Sub(at) >= ExpiringEvery || (!strings.HasPrefix(k, string(EventExpiring)+"\x00") && now.Sub(at) >= n.suppress) {
				delete(n.recent, k)
			}
		}
	}
	if at, ok := n.recent[key]; ok && now.Sub(at) < window {
		return false
	}
	n.recent[key] = now
	return true
}

// dedupKey identifies "the same event": an expiring notice by its
// certificate alone (a new revision does not repeat it), anything else by
// everything it says.
func dedupKey(m Message) string {
	if m.Event == EventExpiring {
		return strings.Join([]string{string(m.Event), m.Name, m.Entity, m.Certificate}, "\x00")
	}
	parts := []string{string(m.Event), m.Name, m.Revision, m.Entity, m.Certificate, m.Summary}
	for _, p := range m.Problems {
		parts = append(parts, p.String())
	}
	return strings.Join(parts, "\x00")
}

// Stats returns the counters.
func (n *Notifier) Stats() Stats {
	if n == nil {
		return Stats{}
	}
	s := Stats{Sent: n.sent.Load(), Failed: n.failed.Load(), Suppressed: n.suppressed.Load()}
	for _, t := range n.targets {
		_, d, _ := t.q.state()
		s.Dropped += d
	}
	return s
}

// Shutdown stops accepting messages and waits until the queued ones are
// delivered or ctx ends; then it abandons the rest and returns ctx's
// error.
func (n *Notifier) Shutdown(ctx context.Context) error {
	if n == nil {
		return nil
	}
	for _, t := range n.targets {
		t.q.close()
	}
	done := make(chan struct{})
	go func() { n.wg.Wait(); close(done) }()
	select {
	case <-done:
		n.cancel()
		return nil
	case <-ctx.Done():
		n.cancel()
		<-done
		return ctx.Err()
	}
}

// run delivers t's queue until it is closed and drained, or the notifier
// is cancelled.
func (n *Notifier) run(t *target) {
	defer n.wg.Done()
	for {
		select {
		case <-t.q.ready:
		case <-n.ctx.Done():
			return
		}
		for {
			m, ok := t.q.pop()
			if !ok {
				break
			}
			if n.ctx.Err() != nil {
				return
			}
			n.deliver(t, m)
		}
		if l, _, closed := t.q.state(); closed && l == 0 {
			return
		}
	}
}

// deliver sends one message with retries and counts the outcome.
func (n *Notifier) deliver(t *target, m Message) {
	name := t.Provider.String()
	err := n.send(t, m)
	if err != nil {
		n.failed.Add(1)
		n.log.Warn("notification not delivered", "provider", name, "event", string(m.Event), "revision", m.Revision, "err", err)
		return
	}
	n.sent.Add(1)
	n.log.Debug("notification delivered", "provider", name, "event", string(m.Event), "revision", m.Revision)
}

func (n *Notifier) send(t *target, m Message) error {
	req, err := t.Provider.Request(n.ctx, m)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	u := req.URL
	rreq, err := retryablehttp.FromRequest(req)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	resp, err := t.client.Do(rreq)
	if err != nil {
		// Errors quote the URL, whose path is a credential for Slack and
		// Teams: keep scheme and host only.
		msg := err.Error()
		for _, s := range []string{u.String(), u.Redacted()} {
			msg = strings.ReplaceAll(msg, s, endpoint(u.String()))
		}
		return fmt.Errorf("%s", msg)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s answered %s: %s", endpoint(u.String()), resp.Status, strings.TrimSpace(string(body)))
	}
	return nil
}
