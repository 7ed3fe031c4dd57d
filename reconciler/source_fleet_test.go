package reconciler

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"certops/fixtures"
	"certops/fleet"
)

// startNATS runs an embedded nats-server with JetStream on a temporary
// store and returns its URL.
func startNATS(tb testing.TB) string {
	tb.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: tb.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		tb.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		tb.Fatal("embedded nats-server did not start")
	}
	tb.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s.ClientURL()
}

// testFleet is a fleet on an embedded server, its keys and a publisher.
type testFleet struct {
	url     string
	name    string
	signing *fleet.SigningKey
	dk      *fleet.DataKey
	fl      *fleet.Fleet
	pub     *fleet.Publisher
	ca      *fixtures.CA
}

func newTestFleet(tb testing.TB) *testFleet {
	tb.Helper()
	tf := &testFleet{url: startNATS(tb), name: "prod", signing: newSigningKey(tb), ca: fixtures.NewRootCA(tb, "fleet CA")}
	raw := make([]byte, fleet.DataKeySize)
	rand.Read(raw)
	var err error
	if tf.dk, err = fleet.NewDataKey(raw); err != nil {
		tb.Fatal(err)
	}
	tf.fl = tf.open(tb, nil)
	if err := tf.fl.Setup(tb.Context()); err != nil {
		tb.Fatal(err)
	}
	tf.pub = tf.publisher(tb, tf.signing)
	return tf
}

func newSigningKey(tb testing.TB) *fleet.SigningKey {
	tb.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return fleet.NewSigningKey(priv)
}

func (tf *testFleet) open(tb testing.TB, log *slog.Logger) *fleet.Fleet {
	tb.Helper()
	c, err := fleet.Connect(fleet.ConnOptions{URLs: []string{tf.url}})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close)
	f, err := fleet.Open(c, tf.name, fleet.Options{Logger: log})
	if err != nil {
		tb.Fatal(err)
	}
	return f
}

func (tf *testFleet) publisher(tb testing.TB, k *fleet.SigningKey) *fleet.Publisher {
	tb.Helper()
	p, err := tf.fl.NewPublisher(fleet.PublisherOptions{Signing: k, DataKey: tf.dk})
	if err != nil {
		tb.Fatal(err)
	}
	return p
}

// entity is a literal-key entity for name.example.test, and its leaf.
func (tf *testFleet) entity(tb testing.TB, name string) (fleet.Entity, *fixtures.Leaf) {
	tb.Helper()
	leaf := tf.ca.Server(tb, name+".example.test")
	return fleet.Entity{File: name + ".yaml", Doc: fleet.Document{Name: name, SNIs: []string{name + ".example.test"},
		Cert: string(leaf.ChainPEM), Key: string(leaf.KeyPEM)}}, leaf
}

func (tf *testFleet) publish(tb testing.TB, p *fleet.Publisher, revision string, ents ...fleet.Entity) {
	tb.Helper()
	if _, err := p.Publish(tb.Context(), revision, ents); err != nil {
		tb.Fatalf("Publish %s: %v", revision, err)
	}
}

// kv binds one of the fleet's buckets directly, as an attacker with write
// access to the bus would.
func (tf *testFleet) kv(tb testing.TB, kind string) jetstream.KeyValue {
	tb.Helper()
	nc, err := nats.Connect(tf.url)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, _ := jetstream.New(nc)
	kv, err := js.KeyValue(tb.Context(), "certops_"+tf.name+"_"+kind)
	if err != nil {
		tb.Fatal(err)
	}
	return kv
}

// node is a fleet node: its source and a reconciler driving a real
// gateway.
type testNode struct {
	src *FleetSource
	rec *Reconciler
	gw  *testGateway
}

func (tf *testFleet) node(tb testing.TB, id string, log *slog.Logger) *testNode {
	tb.Helper()
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	src, err := NewFleetSource(FleetSourceOptions{Fleet: tf.open(tb, log), NodeID: id, URL: "nats://" + tf.name, Logger: log,
		Node: fleet.NodeOptions{Trusted: []fleet.TrustedKey{tf.signing.Public()}, DataKey: tf.dk, Dir: tb.TempDir()}})
	if err != nil {
		tb.Fatal(err)
	}
	gw := startGateway(tb, tf.ca)
	rec := New(Options{Source: src, Gateway: gw, Sinks: []Sink{src}, Logger: log})
	src.Attach(rec.Status, nil)
	return &testNode{src: src, rec: rec, gw: gw}
}

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) count(substr string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Count(s.b.String(), substr)
}

// TestFleetRefusals: a node refuses a manifest no trusted key signed, a
// blob that does not match its digest and a replayed older manifest:
// each is stalled (not retried), logged once and counted once however
// often head is read again, nothing of it is applied, and the last good
// revision keeps serving.
func TestFleetRefusals(t *testing.T) {
	tf := newTestFleet(t)
	var logs syncBuffer
	n := tf.node(t, "n1", slog.New(slog.NewTextHandler(&logs, nil)))
	one, leaf1 := tf.entity(t, "one")
	tf.publish(t, tf.pub, "rev1", one)
	wantResult(t, reconcileNow(t, n.rec), ResultApplied)
	n.gw.wantServed(t, "one.example.test", leaf1)
	head := tf.kv(t, "head")
	first, err := head.Get(t.Context(), "head")
	if err != nil {
		t.Fatal(err)
	}

	want := map[fleet.Reason]int64{}
	for _, r := range fleet.Reasons() {
		want[r] = 0
	}
	steps := []struct {
		name   string
		attack func(t *testing.T) (leaf *fixtures.Leaf) // returns a leaf that must not be served
		reason fleet.Reason
	}{
		{"signed by an untrusted key", func(t *testing.T) *fixtures.Leaf {
			two, leaf := tf.entity(t, "two")
			tf.publish(t, tf.publisher(t, newSigningKey(t)), "evil", one, two)
			return leaf
		}, fleet.ReasonUntrusted},
		{"a blob that does not match its digest", func(t *testing.T) *fixtures.Leaf {
			blobs := tf.kv(t, "blobs")
			before := map[string]bool{}
			keys, _ := blobs.Keys(t.Context())
			for _, k := range keys {
				before[k] = true
			}
			three, leaf := tf.entity(t, "three")
			tf.publish(t, tf.pub, "rev-digest", one, three)
			keys, _ = blobs.Keys(t.Context())
			for _, k := range keys {
				if !before[k] {
					if _, err := blobs.Put(t.Context(), k, []byte(`{"entity":{"name":"three"}}`)); err != nil {
						t.Fatal(err)
					}
				}
			}
			return leaf
		}, fleet.ReasonDigest},
		{"an older manifest replayed", func(t *testing.T) *fixtures.Leaf {
			// A good manifest first (above the refused ones), then the
			// first one again.
			four, leaf4 := tf.entity(t, "four")
			tf.publish(t, tf.pub, "rev4", one, four)
			wantResult(t, reconcileNow(t, n.rec), ResultApplied)
			n.gw.wantServed(t, "four.example.test", leaf4)
			if _, err := head.Put(t.Context(), "head", first.Value()); err != nil {
				t.Fatal(err)
			}
			return nil
		}, fleet.ReasonReplay},
	}
	for _, st := range steps {
		logged := logs.count("fleet manifest refused")
		leaf := st.attack(t)
		applied := n.rec.Status().Applied.ID
		for i := range 3 { // head read again and again: one refusal
			att := reconcileNow(t, n.rec)
			if att.Result != ResultStalled {
				t.Fatalf("%s: reconcile %d: result %s, want stalled; errors %v", st.name, i, att.Result, att.Errors)
			}
		}
		want[st.reason]++
		if got := n.src.Refusals(); got[st.reason] != want[st.reason] {
			t.Errorf("%s: Refusals() = %v, want %s at %d", st.name, got, st.reason, want[st.reason])
		}
		if got := logs.count("fleet manifest refused") - logged; got != 1 {
			t.Errorf("%s: logged %d refusals, want 1", st.name, got)
		}
		if got := n.rec.Status().Applied.ID; got != applied {
			t.Errorf("%s: applied %s, want %s still", st.name, got, applied)
		}
		if rec := n.src.Record(); rec.Result != "refused" || len(rec.Errors) == 0 {
			t.Errorf("%s: record result %q, errors %v; want refused, with the reason", st.name, rec.Result, rec.Errors)
		}
		n.gw.wantServed(t, "one.example.test", leaf1)
		if leaf != nil {
			n.gw.wantRefused(t, leaf.Cert.DNSNames[0])
		}
	}
	if got := n.src.Refusals(); len(got) != len(fleet.Reasons()) {
		t.Errorf("Refusals() = %v, want every reason", got)
	}
}

// TestFleetTicketKeys: two nodes take the session-ticket keys the leader
// rotates; a session one node's gateway issued resumes on the other's,
// for the same entity only, and still after a rotation.
func TestFleetTicketKeys(t *testing.T) {
	tf := newTestFleet(t)
	one, _ := tf.entity(t, "one")
	two, _ := tf.entity(t, "two")
	tf.publish(t, tf.pub, "rev1", one, two)
	now := time.Now()
	if _, err := tf.fl.RotateTicketKeys(t.Context(), tf.dk, 0, now); err != nil {
		t.Fatal(err)
	}
	type fed struct {
		node *testNode
		keys chan int
	}
	var nodes []fed
	for _, id := range []string{"n1", "n2"} {
		n := tf.node(t, id, nil)
		f := fed{node: n, keys: make(chan int, 8)}
		n.src.UseTicketKeys(func(k [][32]byte) error {
			err := n.gw.SetTicketKeys(k)
			f.keys <- len(k)
			return err
		})
		ctx, cancel := context.WithCancel(t.Context())
		var wg sync.WaitGroup
		wg.Go(func() { n.rec.Run(ctx) })
		t.Cleanup(func() { cancel(); wg.Wait() })
		nodes = append(nodes, f)
	}
	waitKeys := func(want int) {
		t.Helper()
		for _, f := range nodes {
			select {
			case got := <-f.keys:
				if got != want {
					t.Fatalf("node got %d ticket keys, want %d", got, want)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("the fleet's ticket keys did not reach the node")
			}
		}
	}
	waitKeys(1)
	for _, f := range nodes {
		for f.node.rec.Status().Applied == nil {
			time.Sleep(10 * time.Millisecond)
		}
	}
	cache := tls.NewLRUClientSessionCache(8)
	visit := func(n *testNode, sni string) bool {
		t.Helper()
		d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: &tls.Config{
			ServerName: sni, RootCAs: fixtures.Pool(tf.ca), ClientSessionCache: cache, MaxVersion: tls.VersionTLS12}}
		c, err := d.DialContext(t.Context(), "tcp", n.gw.addr)
		if err != nil {
			t.Fatalf("handshake %s: %v", sni, err)
		}
		defer c.Close()
		return c.(*tls.Conn).ConnectionState().DidResume
	}
	n1, n2 := nodes[0].node, nodes[1].node
	if visit(n1, "one.example.test") {
		t.Fatal("first visit resumed")
	}
	if !visit(n2, "one.example.test") {
		t.Error("n1's ticket for one on n2: not resumed, want resumed")
	}
	// The client cache is keyed by server name: offer one's ticket to two.
	cross := cache
	cache = &stickyOnce{cs: lastSession(t, cross, "one.example.test")}
	if visit(n2, "two.example.test") {
		t.Error("one's ticket on two: resumed, want a full handshake")
	}
	cache = cross
	if _, err := tf.fl.RotateTicketKeys(t.Context(), tf.dk, 0, now.Add(13*time.Hour)); err != nil {
		t.Fatal(err)
	}
	waitKeys(2)
	if !visit(n1, "one.example.test") {
		t.Error("after a rotation: the previous key's ticket not resumed, want resumed")
	}
}

// stickyOnce offers one session for every server name.
type stickyOnce struct{ cs *tls.ClientSessionState }

func (c *stickyOnce) Get(string) (*tls.ClientSessionState, bool) { return c.cs, c.cs != nil }
func (c *stickyOnce) Put(string, *tls.ClientSessionState)        {}

func lastSession(t *testing.T, c tls.ClientSessionCache, sni string) *tls.ClientSessionState {
	t.Helper()
	cs, ok := c.Get(sni)
	if !ok {
		t.Fatalf("no session cached for %s", sni)
	}
	return cs
}

// TestFleetRecordOncePerChange: with a proof attached, applying a
// revision leaves the record write to the end of its proof, unless that
// proof has ended already: one write per change, not two.
func TestFleetRecordOncePerChange(t *testing.T) {
	tf := newTestFleet(t)
	one, _ := tf.entity(t, "one")
	tf.publish(t, tf.pub, "rev1", one)
	n := tf.node(t, "n1", nil)
	var mu sync.Mutex
	proved := Proof{Revision: "older", Verified: true}
	n.src.Attach(n.rec.Status, func() Proof { mu.Lock(); defer mu.Unlock(); return proved })
	pending := func() bool {
		select {
		case <-n.src.changed:
			return true
		default:
			return false
		}
	}
	wantResult(t, reconcileNow(t, n.rec), ResultApplied)
	if pending() {
		t.Error("applied while its proof runs: record write asked for, want it left to the proof")
	}
	n.src.ProofChanged()
	if !pending() {
		t.Error("ProofChanged: no record write asked for")
	}

	two, _ := tf.entity(t, "two")
	tf.publish(t, tf.pub, "rev2", one, two)
	mu.Lock()
	proved = Proof{Revision: "rev2", Verified: true} // the proof ended before the source's Apply
	mu.Unlock()
	wantResult(t, reconcileNow(t, n.rec), ResultApplied)
	if !pending() {
		t.Error("applied after its proof ended: no record write asked for")
	}
	if rec := n.src.Record(); rec.Revision != "rev2" || !rec.Verified {
		t.Errorf("Record() = %s verified %v, want rev2 verified", rec.Revision, rec.Verified)
	}
}

// TestFleetTreeIncremental: the tree of each revision, patched from the
// last one's, lists exactly the revision's entities and blobs.
func TestFleetTreeIncremental(t *testing.T) {
	tf := newTestFleet(t)
	n := tf.node(t, "n1", nil)
	ents := map[string]fleet.Entity{}
	for _, name := range []string{"a", "b", "c", "d"} {
		ents[name], _ = tf.entity(t, name)
	}
	steps := []struct {
		name   string
		change func()
	}{
		{"four entities", func() {}},
		{"one changed", func() { ents["b"], _ = tf.entity(t, "b") }},
		{"one removed, one added", func() { delete(ents, "c"); ents["e"], _ = tf.entity(t, "e") }},
		{"grown past a page count", func() {
			for _, name := range []string{"f", "g", "h", "i", "j"} {
				ents[name], _ = tf.entity(t, name)
			}
		}},
		{"one changed again", func() { ents["g"], _ = tf.entity(t, "g") }},
	}
	for i, st := range steps {
		st.change()
		var list []fleet.Entity
		for _, e := range ents {
			list = append(list, e)
		}
		tf.publish(t, tf.pub, fmt.Sprintf("rev%d", i), list...)
		tree, err := n.src.Fetch(t.Context())
		if err != nil {
			t.Fatalf("%s: Fetch: %v", st.name, err)
		}
		rev, err := n.src.node.Fetch(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{}
		for name, d := range rev.Blobs() {
			want[name+".json"] = d
		}
		if diff := cmp.Diff(want, tree.Files); diff != "" {
			t.Errorf("%s: tree files (-want +got):\n%s", st.name, diff)
		}
		if len(tree.Files) != len(ents) {
			t.Errorf("%s: %d files, want %d", st.name, len(tree.Files), len(ents))
		}
	}
}
