package fleet

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"certops/fixtures"
)

// publisher sets fleet f up and returns a publisher with k.
func publisher(tb testing.TB, f *Fleet, k testKeys, withDataKey bool) *Publisher {
	tb.Helper()
	if err := f.Setup(testContext(tb)); err != nil {
		tb.Fatal(err)
	}
	opts := PublisherOptions{Signing: k.sign}
	if withDataKey {
		opts.DataKey = k.dk
	}
	p, err := f.NewPublisher(opts)
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

func node(tb testing.TB, f *Fleet, k testKeys, dir string) *Node {
	tb.Helper()
	n, err := f.NewNode(NodeOptions{Trusted: []TrustedKey{k.sign.Public()}, DataKey: k.dk, Dir: dir})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { n.Close() })
	return n
}

func TestPublishFetch(t *testing.T) {
	forEachServer(t, func(t *testing.T, ns *natsServer) {
		ctx := testContext(t)
		k := newTestKeys(t)
		ca := fixtures.NewRootCA(t, "fleet CA")
		var ents []Entity
		for i := range 40 {
			e, _ := testEntity(t, ca, fmt.Sprintf("e%02d", i))
			ents = append(ents, e)
		}
		ents = append(ents, refEntity(t, ca, "by-reference"))
		p := publisher(t, openFleet(t, ns, "prod", Options{}), k, true)
		pub, err := p.Publish(ctx, "rev1", ents)
		if err != nil {
			t.Fatal(err)
		}
		if pub.Sequence != 1 || pub.Entities != 41 {
			t.Errorf("Publish = sequence %d, %d entities; want 1, 41", pub.Sequence, pub.Entities)
		}
		n := node(t, openFleet(t, ns, "prod", Options{}), k, t.TempDir())
		rev, err := n.Fetch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if rev.Revision != "rev1" || rev.Sequence != 1 || len(rev.Blobs()) != 41 {
			t.Fatalf("Fetch = %s/%d with %d entities, want rev1/1 with 41", rev.Revision, rev.Sequence, len(rev.Blobs()))
		}
		got, err := rev.Entity("e07")
		if err != nil {
			t.Fatal(err)
		}
		if got.Doc.Key != ents[7].Doc.Key || got.Doc.Cert != ents[7].Doc.Cert || got.File != "e07.yaml" {
			t.Error("Entity(e07) does not give back the published entity with its key opened")
		}
		if r, _ := rev.Entity("by-reference"); r.Doc.Key != ents[40].Doc.Key {
			t.Errorf("Entity(by-reference).Key = %q, want the reference as written", r.Doc.Key)
		}
		if err := n.Applied(rev); err != nil {
			t.Fatal(err)
		}
		first := rev.Bytes

		// Same revision and entities: nothing new on the bus.
		if again, err := p.Publish(ctx, "rev1", ents); err != nil || again.Sequence != 1 {
			t.Errorf("Publish(same) = %+v, %v; want sequence 1 unchanged", again, err)
		}
		// One entity changes: the node downloads the root, one page, one blob.
		ents[3], _ = testEntity(t, ca, "e03")
		if pub, err = p.Publish(ctx, "rev2", ents); err != nil || pub.Sequence != 2 || pub.Uploaded != 2 {
			t.Fatalf("Publish(rev2) = %+v, %v; want sequence 2 and 2 uploads (page, blob)", pub, err)
		}
		rev2, err := n.Fetch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if rev2.Sequence != 2 || rev2.Fetched != 2 || rev2.Blobs()["e03"] == rev.Blobs()["e03"] || rev2.Blobs()["e04"] != rev.Blobs()["e04"] {
			t.Errorf("Fetch(rev2) = sequence %d, fetched %d: want 2 and 2 (one page, one blob), e03 changed, e04 not", rev2.Sequence, rev2.Fetched)
		}
		if rev2.Bytes >= first {
			t.Errorf("one-entity change cost %d bytes, the first fetch %d: want less", rev2.Bytes, first)
		}
		if again, err := n.Fetch(ctx); err != nil || again != rev2 {
			t.Errorf("Fetch(unchanged head) = %v, %v; want the same revision", again, err)
		}
	})
}

// TestLiteralKeyNeedsDataKey: a publisher without a data key refuses a
// revision with a literal key, and writes nothing; references travel.
func TestLiteralKeyNeedsDataKey(t *testing.T) {
	ns := embeddedServer(t)
	ctx := testContext(t)
	k := newTestKeys(t)
	ca := fixtures.NewRootCA(t, "fleet CA")
	lit, _ := testEntity(t, ca, "literal")
	f := openFleet(t, ns, "prod", Options{})
	p := publisher(t, f, k, false)
	if _, err := p.Publish(ctx, "rev1", []Entity{lit}); !errors.Is(err, ErrLiteralKey) || !strings.Contains(err.Error(), "entity literal") {
		t.Errorf("Publish(literal key, no data key) = %v, want ErrLiteralKey naming the entity", err)
	}
	if st, err := f.Status(ctx); err != nil || st.Head.Sequence != 0 {
		t.Errorf("head after a refused publish = %+v, %v; want nothing published", st, err)
	}
	if _, err := p.Publish(ctx, "rev1", []Entity{refEntity(t, ca, "ref")}); err != nil {
		t.Errorf("Publish(reference, no data key) = %v, want nil", err)
	}
}

// TestNodeRefuses runs each attack against a node that applied sequence
// 1, and checks that it is refused with its reason.
func TestNodeRefuses(t *testing.T) {
	forEachServer(t, func(t *testing.T, ns *natsServer) {
		ca := fixtures.NewRootCA(t, "fleet CA")
		e1, _ := testEntity(t, ca, "one")
		e2, _ := testEntity(t, ca, "two")
		tests := []struct {
			name   string
			attack func(t *testing.T, ctx context.Context, f *Fleet, k testKeys, good []byte)
			want   Reason
		}{
			{"signed by another key", func(t *testing.T, ctx context.Context, f *Fleet, k testKeys, _ []byte) {
				other := newTestKeys(t)
				other.dk = k.dk
				p, _ := f.NewPublisher(PublisherOptions{Signing: other.sign, DataKey: k.dk})
				if _, err := p.Publish(ctx, "evil", []Entity{e1, e2}); err != nil {
					t.Fatal(err)
				}
			}, ReasonUntrusted},
			{"blob does not match its digest", func(t *testing.T, ctx context.Context, f *Fleet, k testKeys, _ []byte) {
				p, _ := f.NewPublisher(PublisherOptions{Signing: k.sign, DataKey: k.dk})
				e3, _ := testEntity(t, ca, "three")
				if _, err := p.Publish(ctx, "rev2", []Entity{e1, e2, e3}); err != nil {
					t.Fatal(err)
				}
				b, _ := encodeBlob(f.Name(), e3, k.dk)
				kv, _ := f.bucket(ctx, bucketBlobs, false)
				if _, err := kv.Put(ctx, digestOf(b), append(b, ' ')); err != nil {
					t.Fatal(err)
				}
			}, ReasonDigest},
			{"older manifest replayed", func(t *testing.T, ctx context.Context, f *Fleet, k testKeys, good []byte) {
				p, _ := f.NewPublisher(PublisherOptions{Signing: k.sign, DataKey: k.dk})
				if _, err := p.Publish(ctx, "rev2", []Entity{e1}); err != nil {
					t.Fatal(err)
				}
				// The node applies 2 below; then sequence 1 comes back.
			}, ReasonReplay},
			{"tampered manifest", func(t *testing.T, ctx context.Context, f *Fleet, k testKeys, good []byte) {
				kv, _ := f.bucket(ctx, bucketHead, false)
				bad := strings.Replace(string(good), `\"revision\":\"rev1\"`, `\"revision\":\"rev9\"`, 1)
				bad = strings.Replace(bad, `"revision":"rev1"`, `"revision":"rev9"`, 1)
				if bad == string(good) {
					t.Fatal("tampering changed nothing")
				}
				if _, err := kv.Put(ctx, headKey, []byte(bad)); err != nil {
					t.Fatal(err)
				}
			}, ReasonUntrusted},
		}
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ctx := testContext(t)
				k := newTestKeys(t)
				name := fmt.Sprintf("attack%d", i)
				f := openFleet(t, ns, name, Options{})
				p := publisher(t, f, k, true)
				if _, err := p.Publish(ctx, "rev1", []Entity{e1, e2}); err != nil {
					t.Fatal(err)
				}
				kv, _ := f.bucket(ctx, bucketHead, false)
				good, _ := kv.Get(ctx, headKey)
				n := node(t, openFleet(t, ns, name, Options{}), k, t.TempDir())
				rev, err := n.Fetch(ctx)
				if err != nil {
					t.Fatal(err)
				}
				n.Applied(rev)
				tt.attack(t, ctx, f, k, good.Value())
				if tt.want == ReasonReplay {
					// Apply the newer manifest first.
					r2, err := n.Fetch(ctx)
					if err != nil {
						t.Fatal(err)
					}
					n.Applied(r2)
					kv.Put(ctx, headKey, good.Value())
				}
				got, err := n.Fetch(ctx)
				reason, ok := Refusal(err)
				if !ok || reason != tt.want {
					t.Fatalf("Fetch after attack = %v, %v; want a refusal %q", got, err, tt.want)
				}
				if n.applied == nil || n.AppliedSequence() == 0 {
					t.Error("the refusal dropped the applied revision")
				}
			})
		}
	})
}

// TestNodeWithoutDataKeyRefusesSealed: a node without the data key cannot
// open a literal key, and says so.
func TestNodeWithoutDataKeyRefusesSealed(t *testing.T) {
	ns := embeddedServer(t)
	ctx := testContext(t)
	k := newTestKeys(t)
	ca := fixtures.NewRootCA(t, "fleet CA")
	e, _ := testEntity(t, ca, "one")
	p := publisher(t, openFleet(t, ns, "prod", Options{}), k, true)
	if _, err := p.Publish(ctx, "rev1", []Entity{e}); err != nil {
		t.Fatal(err)
	}
	n, _ := openFleet(t, ns, "prod", Options{}).NewNode(NodeOptions{Trusted: []TrustedKey{k.sign.Public()}})
	if _, err := n.Fetch(ctx); !isReason(err, ReasonSealed) {
		t.Errorf("Fetch without data key = %v, want a %q refusal", err, ReasonSealed)
	}
}

func isReason(err error, want Reason) bool {
	r, ok := Refusal(err)
	return ok && r == want
}

// TestRestoreWithoutNATS: a node restarted while NATS is down serves its
// last applied revision from the data dir, and converges once NATS is back.
func TestRestoreWithoutNATS(t *testing.T) {
	forEachServer(t, func(t *testing.T, ns *natsServer) {
		ctx := testContext(t)
		k := newTestKeys(t)
		ca := fixtures.NewRootCA(t, "fleet CA")
		e1, _ := testEntity(t, ca, "one")
		p := publisher(t, openFleet(t, ns, "prod", Options{}), k, true)
		if _, err := p.Publish(ctx, "rev1", []Entity{e1}); err != nil {
			t.Fatal(err)
		}
		dir := t.TempDir()
		n := node(t, openFleet(t, ns, "prod", Options{}), k, dir)
		rev, err := n.Fetch(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Applied(rev); err != nil {
			t.Fatal(err)
		}

		// "Restart" against a server that does not answer.
		c, err := Connect(ConnOptions{URLs: []string{"nats://127.0.0.1:1"}})
		if err != nil {
			t.Fatalf("Connect(down server) = %v, want a connection that keeps trying", err)
		}
		defer c.Close()
		f, _ := Open(c, "prod", Options{})
		n2 := node(t, f, k, dir)
		got, err := n2.Restore()
		if err != nil || got == nil || got.Revision != "rev1" {
			t.Fatalf("Restore = %v, %v; want rev1", got, err)
		}
		if ent, err := got.Entity("one"); err != nil || ent.Doc.Key != e1.Doc.Key {
			t.Errorf("restored Entity(one) = %v; want the key opened", err)
		}
		short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		if _, err := n2.Fetch(short); err == nil {
			t.Error("Fetch with NATS down = nil error, want a retryable error")
		} else if _, ok := Refusal(err); ok {
			t.Errorf("Fetch with NATS down = refusal %v, want a retryable error", err)
		}
	})
}

// TestWatchTriggers: Watch fires when head moves, and again after the
// bucket appears (a node started before any publisher).
func TestWatchTriggers(t *testing.T) {
	ns := embeddedServer(t)
	ctx := testContext(t)
	k := newTestKeys(t)
	n := node(t, openFleet(t, ns, "prod", Options{}), k, "")
	fired := make(chan struct{}, 16)
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { n.Watch(wctx, func() { fired <- struct{}{} }); close(done) }()
	defer func() { cancel(); <-done }()

	ca := fixtures.NewRootCA(t, "fleet CA")
	e1, _ := testEntity(t, ca, "one")
	p := publisher(t, openFleet(t, ns, "prod", Options{}), k, true)
	if _, err := p.Publish(ctx, "rev1", []Entity{e1}); err != nil {
		t.Fatal(err)
	}
	waitFired(t, fired)
	for len(fired) > 0 {
		<-fired
	}
	e1b, _ := testEntity(t, ca, "one")
	if _, err := p.Publish(ctx, "rev2", []Entity{e1b}); err != nil {
		t.Fatal(err)
	}
	waitFired(t, fired)
	if rev, err := n.Fetch(ctx); err != nil || rev.Revision != "rev2" {
		t.Errorf("Fetch after trigger = %v, %v; want rev2", rev, err)
	}
}

func waitFired(t *testing.T, fired <-chan struct{}) {
	t.Helper()
	select {
	case <-fired:
	case <-time.After(15 * time.Second):
		t.Fatal("Watch did not trigger")
	}
}

var _ = jetstream.ErrKeyNotFound
