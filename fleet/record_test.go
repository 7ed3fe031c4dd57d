package fleet

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats.go"

	"certops/fixtures"
)

// TestStatusAndWait: records expire with the bucket TTL, status counts
// convergence, and wait resolves a prefix, honours --min and lists the
// lagging nodes on timeout.
func TestStatusAndWait(t *testing.T) {
	forEachServer(t, func(t *testing.T, ns *natsServer) {
		ctx := testContext(t)
		k := newTestKeys(t)
		ca := fixtures.NewRootCA(t, "fleet CA")
		e1, _ := testEntity(t, ca, "one")
		f := openFleet(t, ns, "prod", Options{RecordTTL: 1500 * time.Millisecond})
		p := publisher(t, f, k, true)
		const rev1, rev2 = "1111aaaa5555", "2222bbbb6666"
		if _, err := p.Publish(ctx, rev1, []Entity{e1}); err != nil {
			t.Fatal(err)
		}
		e1b, _ := testEntity(t, ca, "one")
		if _, err := p.Publish(ctx, rev2, []Entity{e1b}); err != nil {
			t.Fatal(err)
		}
		now := time.Now().UTC().Truncate(time.Second)
		recs := []Record{
			{Node: "n1", Revision: rev2, Sequence: 2, Time: now, Result: "applied", Verified: true},
			{Node: "n2", Revision: rev1, Sequence: 1, Time: now, Result: "applied", Verified: true},
			{Node: "n3", Revision: rev2, Sequence: 2, Time: now, Result: "applied", Verified: false, Errors: []string{"mismatch"}},
		}
		for _, r := range recs {
			if err := f.WriteRecord(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		st, err := f.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Head.Revision != rev2 || st.Head.Sequence != 2 || st.Total != 3 || st.Converged != 1 {
			t.Errorf("Status = head %s/%d, %d of %d converged; want %s/2, 1 of 3", st.Head.Revision, st.Head.Sequence, st.Converged, st.Total, rev2)
		}
		recs[1].Errors, recs[0].Errors = []string{}, []string{}
		if diff := cmp.Diff(recs, st.Nodes); diff != "" {
			t.Errorf("Status.Nodes (-want +got):\n%s", diff)
		}

		tests := []struct {
			name     string
			opts     WaitOptions
			wantErr  error
			done     []string
			lagging  []string
			resolved string
		}{
			{"rev1 prefix, all: n3 unverified", WaitOptions{Revision: "1111"}, context.DeadlineExceeded, []string{"n1", "n2"}, []string{"n3"}, rev1},
			{"rev2, all", WaitOptions{Revision: rev2}, context.DeadlineExceeded, []string{"n1"}, []string{"n2", "n3"}, rev2},
			{"rev2, min 1", WaitOptions{Revision: "2222b", Min: 1}, nil, []string{"n1"}, []string{"n2", "n3"}, rev2},
			{"unknown revision", WaitOptions{Revision: "9999"}, context.DeadlineExceeded, nil, []string{"n1", "n2", "n3"}, ""},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				for _, r := range recs { // refresh them: they expire
					if err := f.WriteRecord(ctx, r); err != nil {
						t.Fatal(err)
					}
				}
				wctx, cancel := context.WithTimeout(ctx, 600*time.Millisecond)
				defer cancel()
				res, err := f.Wait(wctx, tt.opts)
				if !errors.Is(err, tt.wantErr) && !(err == nil && tt.wantErr == nil) {
					t.Fatalf("Wait(%+v) error = %v, want %v", tt.opts, err, tt.wantErr)
				}
				if got := names(res.Done); !cmp.Equal(got, tt.done) {
					t.Errorf("Wait(%q).Done = %v, want %v", tt.opts.Revision, got, tt.done)
				}
				if got := names(res.Lagging); !cmp.Equal(got, tt.lagging) {
					t.Errorf("Wait(%q).Lagging = %v, want %v", tt.opts.Revision, got, tt.lagging)
				}
				if res.Revision != tt.resolved {
					t.Errorf("Wait(%q).Revision = %q, want %q", tt.opts.Revision, res.Revision, tt.resolved)
				}
			})
		}

		// An ambiguous prefix is an error at once.
		if err := f.WriteRecord(ctx, Record{Node: "n4", Revision: "1111ffff", Sequence: 1, Verified: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := f.Wait(ctx, WaitOptions{Revision: "1111"}); !errors.Is(err, ErrAmbiguous) {
			t.Errorf("Wait(ambiguous) = %v, want ErrAmbiguous", err)
		}

		// Records expire with the bucket's TTL: a dead node leaves the fleet.
		deadline := time.Now().Add(10 * time.Second)
		for {
			st, err := f.Status(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if st.Total == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("records did not expire: %d left", st.Total)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
}

func names(rs []Record) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Node)
	}
	return out
}

func TestTicketKeys(t *testing.T) {
	forEachServer(t, func(t *testing.T, ns *natsServer) {
		ctx := testContext(t)
		k := newTestKeys(t)
		f := openFleet(t, ns, "prod", Options{})
		if err := f.Setup(ctx); err != nil {
			t.Fatal(err)
		}
		node := openFleet(t, ns, "prod", Options{})
		got := make(chan *TicketKeys, 8)
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go node.WatchTicketKeys(wctx, k.dk, func(tk *TicketKeys) { got <- tk })

		t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		var seen [][32]byte
		for i, at := range []time.Time{t0, t0.Add(time.Hour), t0.Add(13 * time.Hour), t0.Add(26 * time.Hour), t0.Add(39 * time.Hour)} {
			rotated, err := f.RotateTicketKeys(ctx, k.dk, 0, at)
			if err != nil {
				t.Fatal(err)
			}
			if want := i != 1; rotated != want {
				t.Errorf("RotateTicketKeys(+%v) = %v, want %v", at.Sub(t0), rotated, want)
			}
			if !rotated {
				continue
			}
			var tk *TicketKeys
			select {
			case tk = <-got:
			case <-time.After(10 * time.Second):
				t.Fatal("the node did not receive the ticket keys")
			}
			seen = append([][32]byte{tk.Keys[0]}, seen...)
			if want := seen[:min(len(seen), TicketKeysKept)]; !cmp.Equal(tk.Keys, want) {
				t.Errorf("after rotation %d: %d keys, want the current and the two before it (%d)", i, len(tk.Keys), len(want))
			}
		}
		// A node with another data key refuses them and keeps its own.
		other := newTestKeys(t)
		if _, err := node.TicketKeys(ctx, other.dk); !isReason(err, ReasonSealed) {
			t.Errorf("TicketKeys(other data key) = %v, want a sealed refusal", err)
		}
		kv, _ := f.bucket(ctx, bucketTickets, false)
		e, _ := kv.Get(ctx, ticketsKey)
		for _, key := range seen {
			if strings.Contains(string(e.Value()), string(key[:])) {
				t.Error("a ticket key travels in the clear")
			}
		}
	})
}

// TestWaitCreatesNoConsumer: wait ends once the fleet converges, reading
// it without creating a single consumer, and a node whose record expires
// meanwhile stops counting as live.
func TestWaitCreatesNoConsumer(t *testing.T) {
	forEachServer(t, func(t *testing.T, ns *natsServer) {
		ctx := testContext(t)
		k := newTestKeys(t)
		e1, _ := testEntity(t, fixtures.NewRootCA(t, "fleet CA"), "one")
		f := openFleet(t, ns, "watch", Options{RecordTTL: 2 * time.Second})
		p := publisher(t, f, k, true)
		const rev = "3333cccc7777"
		if _, err := p.Publish(ctx, rev, []Entity{e1}); err != nil {
			t.Fatal(err)
		}
		write := func(r Record) {
			t.Helper()
			r.Time = time.Now().UTC()
			if err := f.WriteRecord(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		write(Record{Node: "a", Revision: "old", Sequence: 0})
		write(Record{Node: "b", Revision: "old", Sequence: 0})

		// Every consumer created on the server, by anyone: a copy of each
		// JetStream API request.
		var created atomic.Int32
		sub, err := f.conn.nc.Subscribe("$JS.API.CONSUMER.CREATE.>", func(*nats.Msg) { created.Add(1) })
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
		f.conn.nc.Flush()

		type result struct {
			res *WaitResult
			err error
		}
		done := make(chan result, 1)
		start := time.Now()
		go func() {
			wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			res, err := f.Wait(wctx, WaitOptions{Revision: "3333"})
			done <- result{res, err}
		}()
		consumers := func(kind bucketKind) int {
			s, err := f.js.Stream(ctx, "KV_"+f.bucketName(kind))
			if err != nil {
				t.Fatal(err)
			}
			info, err := s.Info(ctx)
			if err != nil {
				t.Fatal(err)
			}
			return info.State.Consumers
		}
		// Node a converges; b keeps lagging, then stops refreshing its
		// record (it died): wait must end once b's record expires.
		for i := range 4 {
			time.Sleep(300 * time.Millisecond)
			write(Record{Node: "a", Revision: rev, Sequence: 1, Verified: true})
			if i == 0 {
				write(Record{Node: "b", Revision: "old", Sequence: 0})
			}
			if h, n := consumers(bucketHead), consumers(bucketNodes); h > 0 || n > 0 {
				t.Errorf("while waiting: %d consumers on head, %d on the node bucket; want none", h, n)
			}
		}
		var r result
		for r.res == nil && r.err == nil {
			select {
			case r = <-done:
			case <-time.After(300 * time.Millisecond):
				write(Record{Node: "a", Revision: rev, Sequence: 1, Verified: true}) // a stays alive
			}
		}
		if r.err != nil {
			t.Fatalf("Wait = %v, want nil once b expired", r.err)
		}
		if got := names(r.res.Done); !cmp.Equal(got, []string{"a"}) || len(r.res.Lagging) != 0 {
			t.Errorf("Wait: done %v, lagging %v; want [a], none", got, names(r.res.Lagging))
		}
		if n := created.Load(); n > 0 {
			t.Errorf("Wait created %d consumers, want none (it reads with API requests)", n)
		}
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("Wait took %v, want it to end once b's record expired (2 s TTL)", d)
		}
	})
}

func TestHeadConverged(t *testing.T) {
	head := Head{Revision: "c59d8e0f", Sequence: 5}
	tests := []struct {
		name string
		rec  Record
		want bool
	}{
		{"at head's sequence", Record{Revision: "c59d8e0f", Sequence: 5, Verified: true}, true},
		{"past head's sequence", Record{Revision: "d00d", Sequence: 6, Verified: true}, true},
		{"head's revision under an older sequence (head signed again)", Record{Revision: "c59d8e0f", Sequence: 4, Verified: true}, true},
		{"an older revision", Record{Revision: "a7791f58", Sequence: 3, Verified: true}, false},
		{"head's revision, not verified", Record{Revision: "c59d8e0f", Sequence: 5}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := head.Converged(tt.rec); got != tt.want {
				t.Errorf("Head%+v.Converged(%+v) = %v, want %v", head, tt.rec, got, tt.want)
			}
		})
	}
	if (Head{}).Converged(Record{Verified: true}) {
		t.Error("nothing published: Converged = true, want false")
	}
}

// TestWaitRevisionPrefix: a folder's revision is waited for by its digest
// too, with or without its kind, and a Git commit id by its prefix.
func TestWaitRevisionPrefix(t *testing.T) {
	st := &Status{
		Head:  Head{Revision: "dir:4247c124e512", Sequence: 3},
		Nodes: []Record{{Node: "edge-1", Revision: "dir:4247c124e512", Sequence: 3, Verified: true}},
	}
	for _, tc := range []struct {
		prefix string
		want   bool
	}{
		{"dir:4247c124e512", true},
		{"dir:4247", true},
		{"4247c124e512", true},
		{"4247", true},
		{"dir:", true},
		{"fs:4247", false},
		{"c124", false},
	} {
		res, err := evaluate(st, nil, WaitOptions{Revision: tc.prefix})
		if err != nil {
			t.Fatalf("%q: %v", tc.prefix, err)
		}
		if got := len(res.Done) == 1 && res.Revision == "dir:4247c124e512"; got != tc.want {
			t.Errorf("waiting for %q: done %v (revision %q), want %v", tc.prefix, got, res.Revision, tc.want)
		}
		if got := mentions(st, tc.prefix); got != tc.want {
			t.Errorf("mentions(%q) = %v, want %v", tc.prefix, got, tc.want)
		}
	}
}
