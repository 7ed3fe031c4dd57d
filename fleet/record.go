package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Record is what a node tells the fleet about itself (DESIGN.md 9). It
// lives in the node bucket until RecordTTL passes without a refresh.
type Record struct {
	Node     string    `json:"node"`
	Revision string    `json:"revision"` // applied Git revision ("" before the first apply)
	Sequence uint64    `json:"sequence"` // applied manifest sequence
	Time     time.Time `json:"time"`
	// Result is the result of the node's last attempt (applied,
	// unchanged, stalled, failed, refused).
	Result string `json:"result"`
	// Verified is true when every entity created or updated by the last
	// apply was served with the applied leaf on a loopback handshake.
	Verified bool     `json:"verified"`
	Errors   []string `json:"errors"`
}

// WriteRecord writes (or refreshes) the record of rec.Node.
func (f *Fleet) WriteRecord(ctx context.Context, rec Record) error {
	if !ValidName(rec.Node) {
		return fmt.Errorf("node name %q: use 1 to 64 letters, digits, - or _", rec.Node)
	}
	if rec.Errors == nil {
		rec.Errors = []string{}
	}
	kv, err := f.bucket(ctx, bucketNodes, true)
	if err != nil {
		return err
	}
	b, _ := json.Marshal(rec)
	if _, err := kv.Put(ctx, rec.Node, b); err != nil {
		return fmt.Errorf("fleet %s: write node record %s: %w", f.name, rec.Node, err)
	}
	return nil
}

// KeepRecord writes record() now, every third of RecordTTL and whenever
// changed receives, until ctx ends. A failed write (NATS down, or the
// node bucket's stream electing a leader after a server died) is retried
// after a second, then after twice as long each time, up to the tick:
// waiting for the next tick left a node's record of a new revision 35-45 s
// late after one server of three was killed.
func (f *Fleet) KeepRecord(ctx context.Context, changed <-chan struct{}, record func() Record) {
	tick := f.opts.RecordTTL / 3
	t := time.NewTicker(tick)
	defer t.Stop()
	var backoff time.Duration
	for {
		wctx, cancel := context.WithTimeout(ctx, min(tick, recordWrite))
		err := f.WriteRecord(wctx, record())
		cancel()
		var retry <-chan time.Time
		if err != nil && ctx.Err() == nil {
			backoff = min(max(2*backoff, time.Second), tick)
			f.log.Debug("cannot write the node record; retrying", "fleet", f.name, "in", backoff, "err", err)
			retry = time.After(backoff)
		} else {
			backoff = 0
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-changed:
		case <-retry:
		}
	}
}

// recordWrite bounds one write of a node record.
const recordWrite = 5 * time.Second

// Head is the newest manifest of a fleet, as fleet status shows it.
type Head struct {
	Revision string    `json:"revision"`
	Sequence uint64    `json:"sequence"`
	Time     time.Time `json:"time,omitzero"`
	Entities int       `json:"entities"`
	Signer   string    `json:"signer,omitempty"`
}

// Status is the convergence of a fleet (fleet status --format json).
type Status struct {
	Fleet     string   `json:"fleet"`
	Head      Head     `json:"head"`
	Nodes     []Record `json:"nodes"`
	Converged int      `json:"converged"`
	Total     int      `json:"total"`
}

// Converged reports whether rec serves head: the last apply was verified,
// and its applied sequence is at least head's or it applied head's
// revision. A manifest signed again for the same revision (a publisher
// that took the lead again republishes what it follows) changes nothing a
// node serves, and a node may record it as unchanged under the older
// sequence.
func (h Head) Converged(rec Record) bool {
	if h.Sequence == 0 || !rec.Verified {
		return false
	}
	return rec.Sequence >= h.Sequence || (h.Revision != "" && rec.Revision == h.Revision)
}

// Status reads head and every live node record. A fleet with nothing
// published has a zero Head.
func (f *Fleet) Status(ctx context.Context) (*Status, error) {
	st := &Status{Fleet: f.name, Nodes: []Record{}}
	kv, err := f.bucket(ctx, bucketHead, false)
	if err != nil && !errors.Is(err, ErrNoHead) {
		return nil, err
	}
	if kv != nil {
		e, err := kv.Get(ctx, headKey)
		switch {
		case isNotFound(err):
		case err != nil:
			return nil, fmt.Errorf("fleet %s: read head: %w", f.name, err)
		default:
			r, signer, err := peekHead(e.Value())
			if err != nil {
				return nil, fmt.Errorf("fleet %s: head: %w", f.name, err)
			}
			st.Head = Head{Revision: r.Revision, Sequence: r.Sequence, Time: r.Time, Entities: r.Entities, Signer: signer}
		}
	}
	nodes, err := f.records(ctx)
	if err != nil {
		return nil, err
	}
	st.Nodes = nodes
	st.Total = len(nodes)
	for _, n := range nodes {
		if st.Head.Converged(n) {
			st.Converged++
		}
	}
	return st, nil
}

// records reads every live node record, sorted by node, with JetStream
// API requests only: the bucket's keys from its stream's subjects, then
// each key's last message from the stream's leader. It creates no
// consumer: right after a server of a cluster died, consumers created on
// a stream can go undelivered for a minute (seen with nats-server 2.9),
// while requests are answered (and retried by retryAPI). Nor does it read
// keys with KV gets, which a bucket answers from any replica (direct get):
// a replica catching up after a restart answered old records for a
// minute. Expired records are gone from the stream (its MaxAge).
func (f *Fleet) records(ctx context.Context) ([]Record, error) {
	if _, err := f.bucket(ctx, bucketNodes, false); errors.Is(err, ErrNoHead) {
		return []Record{}, nil
	} else if err != nil {
		return nil, err
	}
	name := f.bucketName(bucketNodes)
	prefix := "$KV." + name + "."
	var subjects map[string]uint64
	err := retryAPI(ctx, func(ctx context.Context) error {
		s, err := f.js.Stream(ctx, "KV_"+name)
		if err != nil {
			return err
		}
		info, err := s.Info(ctx, jetstream.WithSubjectFilter(prefix+">"))
		if err != nil {
			return err
		}
		subjects = info.State.Subjects
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("fleet %s: read node records: %w", f.name, err)
	}
	out := []Record{}
	for subject := range subjects {
		var data []byte
		err := retryAPI(ctx, func(ctx context.Context) (err error) {
			data, err = f.lastMessage(ctx, "KV_"+name, subject)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("fleet %s: read node record %s: %w", f.name, strings.TrimPrefix(subject, prefix), err)
		}
		var r Record
		if data == nil || json.Unmarshal(data, &r) != nil {
			continue // deleted or expired since the listing, or not a record we wrote
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b Record) int { return strings.Compare(a.Node, b.Node) })
	return out, nil
}

// WaitOptions say what Wait waits for.
type WaitOptions struct {
	// Revision is a Git commit id or a unique prefix of one (4 characters
	// at least). The revision of another kind of source (a folder's
	// "dir:" and digest) matches with its kind or without it, by the
	// same prefix rule.
	Revision string
	// Min is how many nodes must serve it; 0 means every live node (and
	// at least one).
	Min int
}

// WaitResult is the state when Wait returned.
type WaitResult struct {
	Revision string   // the full revision the prefix resolved to, or ""
	Sequence uint64   // the first manifest sequence that carried it
	Done     []Record // nodes serving it, verified
	Lagging  []Record // live nodes not (yet) serving it
	Want     int      // how many nodes had to serve it
}

// ErrAmbiguous is returned by Wait for a prefix of several revisions.
var ErrAmbiguous = errors.New("revision prefix is ambiguous")

// Wait returns once opts.Min (or every live) node has applied and verified
// the revision or a later manifest, with a nil error; when ctx ends first
// it returns the last state and ctx's error, so the caller can list the
// lagging nodes.
//
// It reads the fleet as Status does, every waitPoll, with JetStream API
// requests only (no consumer, see records): a node whose record was not
// refreshed within the bucket's TTL is gone from it and no longer live. A
// fleet whose buckets do not exist yet (nothing published, no node
// started) has no live node and is read again.
func (f *Fleet) Wait(ctx context.Context, opts WaitOptions) (*WaitResult, error) {
	if len(opts.Revision) < 4 {
		return nil, fmt.Errorf("revision %q: give 4 characters at least", opts.Revision)
	}
	res := &WaitResult{}
	var past []Head // head's history, read once if the revision is not in sight
	pastRead := false
	tick := time.NewTicker(waitPoll)
	defer tick.Stop()
	for {
		// Each read has its own bound: a request answered by no server
		// (a stream electing its leader after a server died) must not
		// hold the whole wait, as a later read gets the new leader.
		rctx, cancel := context.WithTimeout(ctx, waitRead)
		st, err := f.Status(rctx)
		if err == nil && !pastRead && !mentions(st, opts.Revision) {
			// Published before the current head: find it in head's
			// history.
			past, _ = f.history(rctx)
			pastRead = true
		}
		cancel()
		switch {
		case err == nil:
			r, err := evaluate(st, past, opts)
			if err != nil {
				return nil, err
			}
			res = r
			if len(r.Done) >= r.Want && r.Want > 0 {
				return r, nil
			}
		case ctx.Err() == nil:
			f.log.Debug("fleet wait: cannot read the fleet; retrying", "fleet", f.name, "err", err)
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-tick.C:
		}
	}
}

// waitPoll is how often Wait reads the fleet, and waitRead how long one
// read may take.
const (
	waitPoll = 500 * time.Millisecond
	waitRead = 5 * time.Second
)

// evaluate computes a WaitResult from one status.
func evaluate(st *Status, past []Head, opts WaitOptions) (*WaitResult, error) {
	res := &WaitResult{Want: opts.Min}
	if res.Want <= 0 {
		res.Want = max(1, len(st.Nodes))
	}
	// The revision and the first sequence known to carry it, from head
	// and the records.
	match := map[string]uint64{}
	note := func(rev string, seq uint64) {
		if rev == "" || seq == 0 || !revisionHasPrefix(rev, opts.Revision) {
			return
		}
		if s, ok := match[rev]; !ok || seq < s {
			match[rev] = seq
		}
	}
	note(st.Head.Revision, st.Head.Sequence)
	for _, h := range past {
		note(h.Revision, h.Sequence)
	}
	for _, n := range st.Nodes {
		note(n.Revision, n.Sequence)
	}
	if len(match) > 1 {
		return nil, fmt.Errorf("%w: %q matches %s", ErrAmbiguous, opts.Revision, strings.Join(slices.Sorted(maps.Keys(match)), ", "))
	}
	for rev, seq := range match {
		res.Revision, res.Sequence = rev, seq
	}
	for _, n := range st.Nodes {
		if res.Sequence != 0 && n.Sequence >= res.Sequence && n.Verified {
			res.Done = append(res.Done, n)
		} else {
			res.Lagging = append(res.Lagging, n)
		}
	}
	return res, nil
}

// mentions reports whether head or a record has a revision starting with
// prefix.
func mentions(st *Status, prefix string) bool {
	if revisionHasPrefix(st.Head.Revision, prefix) {
		return true
	}
	for _, n := range st.Nodes {
		if revisionHasPrefix(n.Revision, prefix) {
			return true
		}
	}
	return false
}

// revisionHasPrefix reports whether rev starts with prefix, or, for the
// revision of a source other than Git ("dir:" and a digest), whether
// the digest does: certops status and the logs show a folder's revision
// whole, a user may give its digest alone.
func revisionHasPrefix(rev, prefix string) bool {
	if strings.HasPrefix(rev, prefix) {
		return true
	}
	_, digest, ok := strings.Cut(rev, ":")
	return ok && !strings.Contains(prefix, ":") && strings.HasPrefix(digest, prefix)
}

// history returns the manifests head kept (headHistory), oldest first.
func (f *Fleet) history(ctx context.Context) ([]Head, error) {
	kv, err := f.bucket(ctx, bucketHead, false)
	if err != nil {
		return nil, err
	}
	es, err := kv.History(ctx, headKey)
	if err != nil {
		return nil, err
	}
	var out []Head
	for _, e := range es {
		if r, _, err := peekHead(e.Value()); err == nil {
			out = append(out, Head{Revision: r.Revision, Sequence: r.Sequence, Time: r.Time, Entities: r.Entities})
		}
	}
	return out, nil
}

// lastMessage returns the data of the last message of subject in stream,
// read from the stream's leader with the JetStream API's STREAM.MSG.GET
// (not a direct get, which any replica answers, however far behind), or
// nil when there is none (deleted or expired).
func (f *Fleet) lastMessage(ctx context.Context, stream, subject string) ([]byte, error) {
	req, _ := json.Marshal(struct {
		LastBySubject string `json:"last_by_subj"`
	}{subject})
	msg, err := f.conn.nc.RequestWithContext(ctx, "$JS.API.STREAM.MSG.GET."+stream, req)
	if err != nil {
		return nil, err
	}
	var resp struct {
		Message *struct {
			Data []byte `json:"data"`
		} `json:"message"`
		Error *jetstream.APIError `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return nil, fmt.Errorf("stream %s: message get: %w", stream, err)
	}
	switch {
	case resp.Error != nil && resp.Error.Code == 404:
		return nil, nil
	case resp.Error != nil:
		return nil, resp.Error
	case resp.Message == nil:
		return nil, fmt.Errorf("stream %s: message get: empty answer", stream)
	}
	if resp.Message.Data == nil {
		return nil, nil // a delete or purge marker
	}
	return resp.Message.Data, nil
}
